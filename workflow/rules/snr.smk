rule snr:
    input:
        world_inputs(),
        rates=f"{R}/passrates/base/passrates.jsonl",
        refs=f"{R}/references/references.jsonl",
    output:
        snr=f"{R}/snr/snr.json",
    log:
        f"{LOGS}/snr.log",
    benchmark:
        f"{BENCH}/snr.tsv"
    params:
        suite=SUITE_DICT,
    threads: 1
    resources:
        gpu=SUITE.resources.gpus_train,
    script:
        "../scripts/snr.py"
