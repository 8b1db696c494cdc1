rule passrates_base:
    input:
        world_inputs(),
    output:
        rates=f"{R}/passrates/base/passrates.jsonl",
        summary=f"{R}/passrates/base/summary.json",
    log:
        f"{LOGS}/passrates_base.log",
    benchmark:
        f"{BENCH}/passrates_base.tsv"
    params:
        suite=SUITE_DICT,
    threads: 1
    resources:
        gpu=SUITE.resources.gpus_sample,
    script:
        "../scripts/passrates.py"


rule references:
    input:
        world_inputs(),
    output:
        refs=f"{R}/references/references.jsonl",
        summary=f"{R}/references/summary.json",
    log:
        f"{LOGS}/references.log",
    benchmark:
        f"{BENCH}/references.tsv"
    params:
        suite=SUITE_DICT,
    threads: 1
    resources:
        gpu=SUITE.resources.gpus_sample,
    script:
        "../scripts/references.py"


rule passrates_after:
    input:
        run=f"{R}/runs/{{method}}/seed{{seed}}/run.json",
    output:
        rates=f"{R}/passrates/{{method}}/seed{{seed}}/passrates.jsonl",
        summary=f"{R}/passrates/{{method}}/seed{{seed}}/summary.json",
    log:
        f"{LOGS}/passrates/{{method}}_seed{{seed}}.log",
    benchmark:
        f"{BENCH}/passrates/{{method}}_seed{{seed}}.tsv"
    params:
        suite=SUITE_DICT,
    threads: 1
    resources:
        gpu=SUITE.resources.gpus_sample,
    script:
        "../scripts/passrates.py"
