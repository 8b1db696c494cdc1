rule snr:
    input:
        world_inputs(),
        rates=L.passrates(),
        refs=L.references,
    output:
        snr=L.snr,
    log:
        L.log("snr.log"),
    benchmark:
        L.bench("snr.tsv")
    params:
        stage=snr_stage.params(SUITE),
    threads: 1
    resources:
        gpu=min(1, SUITE.resources.gpus_train),  # one process on one device
    script:
        "../scripts/snr.py"
