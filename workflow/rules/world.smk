rule build_world:
    output:
        world=L.world_json,
    log:
        L.log("build_world.log"),
    benchmark:
        L.bench("build_world.tsv")
    params:
        world=world_stage.params(SUITE),
    threads: 2
    resources:
        mem_mb=4000,
    script:
        "../scripts/build_world.py"
