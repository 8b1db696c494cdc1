rule build_world:
    output:
        world=f"{R}/world/world.json",
    log:
        f"{LOGS}/build_world.log",
    benchmark:
        f"{BENCH}/build_world.tsv"
    params:
        suite=SUITE_DICT,
        out_dir=f"{R}/world",
    threads: 2
    resources:
        mem_mb=4000,
    script:
        "../scripts/build_world.py"
