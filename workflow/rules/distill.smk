rule teacher_cache:
    input:
        world_inputs(),
        refs=f"{R}/references/references.jsonl",
    output:
        cache=f"{R}/references/teacher_cache.npz",
    log:
        f"{LOGS}/teacher_cache.log",
    benchmark:
        f"{BENCH}/teacher_cache.tsv"
    params:
        suite=SUITE_DICT,
    threads: 1
    resources:
        gpu=SUITE.resources.gpus_sample,
    script:
        "../scripts/teacher_cache.py"


rule distill:
    input:
        world_inputs(),
        rates=f"{R}/passrates/base/passrates.jsonl",
        refs=f"{R}/references/references.jsonl",
        cache=f"{R}/references/teacher_cache.npz",
    output:
        run=f"{R}/runs/{{method}}/seed{{seed}}/run.json",
    log:
        f"{LOGS}/distill/{{method}}_seed{{seed}}.log",
    benchmark:
        f"{BENCH}/distill/{{method}}_seed{{seed}}.tsv"
    params:
        suite=SUITE_DICT,
        run_dir=lambda wc: f"{R}/runs/{wc.method}/seed{wc.seed}",
    threads: 1
    resources:
        gpu=SUITE.resources.gpus_train,
        mem_mb=SUITE.resources.mem_mb_train,
        runtime=SUITE.resources.runtime_train,
    script:
        "../scripts/distill.py"
