rule teacher_cache:
    input:
        world_inputs(),
        refs=L.references,
    output:
        cache=L.teacher_cache,
    log:
        L.log("teacher_cache.log"),
    benchmark:
        L.bench("teacher_cache.tsv")
    params:
        stage=teacher_cache_stage.params(SUITE),
    threads: 1
    resources:
        gpu=SUITE.resources.gpus_sample,
    script:
        "../scripts/teacher_cache.py"


rule distill:
    input:
        world_inputs(),
        rates=L.passrates(),
        refs=L.references,
        cache=L.teacher_cache,
    output:
        run=L.run_json("{method}", "{seed}"),
    log:
        L.log("distill", "{method}_seed{seed}.log"),
    benchmark:
        L.bench("distill", "{method}_seed{seed}.tsv")
    params:
        stage=lambda wc: distill_stage.params(SUITE, wc.method, int(wc.seed)),
    threads: 1
    resources:
        gpu=SUITE.resources.gpus_train,
        mem_mb=SUITE.resources.mem_mb_train,
        runtime=SUITE.resources.runtime_train,
    script:
        "../scripts/distill.py"
