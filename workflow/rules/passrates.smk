rule passrates_base:
    input:
        world_inputs(),
    output:
        rates=L.passrates(),
        summary=L.passrates_summary(),
    log:
        L.log("passrates_base.log"),
    benchmark:
        L.bench("passrates_base.tsv")
    params:
        stage=passrates_stage.params(SUITE, SUITE.student),
    threads: SUITE.resources.cpus_sample  # rollouts are verified on this many processes
    resources:
        gpu=SUITE.resources.gpus_sample,
    script:
        "../scripts/passrates.py"


rule references:
    input:
        world_inputs(),
    output:
        refs=L.references,
        summary=L.references_summary,
    log:
        L.log("references.log"),
    benchmark:
        L.bench("references.tsv")
    params:
        stage=references_stage.params(SUITE),
    threads: SUITE.resources.cpus_sample  # rollouts are verified on this many processes
    resources:
        gpu=SUITE.resources.gpus_sample,
    script:
        "../scripts/references.py"


rule passrates_after:
    input:
        run=L.run_json("{method}", "{seed}"),
    output:
        rates=L.passrates("{method}", "{seed}"),
        summary=L.passrates_summary("{method}", "{seed}"),
    log:
        L.log("passrates", "{method}_seed{seed}.log"),
    benchmark:
        L.bench("passrates", "{method}_seed{seed}.tsv")
    params:
        stage=lambda wc: passrates_stage.params(SUITE, L.checkpoint(wc.method, wc.seed, SUITE.train.steps)),
    threads: SUITE.resources.cpus_sample  # rollouts are verified on this many processes
    resources:
        gpu=SUITE.resources.gpus_sample,
    script:
        "../scripts/passrates_after.py"
