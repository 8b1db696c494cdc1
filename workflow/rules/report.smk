EVAL_FILES = [L.eval_json(m, s, t, name) for (m, s, t) in EVAL_CELLS for name in EVAL_NAMES]
RUN_FILES = [L.run_json(m, s) for m in SUITE.method_ids for s in SUITE.seeds]
AFTER_RATES = [L.passrates(m, SUITE.seeds[0]) for m in SUITE.after_passrate_methods]
SNR_FILES = [L.snr] if SUITE.snr.enabled else []

# seconds of CPU each: on a cluster they run on the submitting host, not as jobs in the GPU partition
localrules:
    summary,
    tables,
    figures,
    calibration,
    ablation_summary,


rule summary:
    input:
        EVAL_FILES,
    output:
        report(L.summary, category="Tables", caption="../report/summary.rst"),
    log:
        L.log("summary.log"),
    benchmark:
        L.bench("summary.tsv")
    script:
        "../scripts/summary.py"


rule tables:
    input:
        summary=L.summary,
        snr=SNR_FILES,
        runs=RUN_FILES,
    output:
        flag=L.tables_flag,
        tables=report(directory(L.tables_dir), category="Tables", caption="../report/tables.rst",
                      patterns=["{name}.md"]),
    log:
        L.log("tables.log"),
    benchmark:
        L.bench("tables.tsv")
    params:
        stage=report_stage.tables_params(SUITE),
    script:
        "../scripts/tables.py"


rule figures:
    input:
        summary=L.summary,
        snr=SNR_FILES,
        base_rates=L.passrates(),
        after_rates=AFTER_RATES,
        runs=RUN_FILES,
    output:
        flag=L.figures_flag,
        figures=report(directory(L.figures_dir), category="Figures", caption="../report/figures.rst",
                       patterns=["{name}.png"]),
    log:
        L.log("figures.log"),
    benchmark:
        L.bench("figures.tsv")
    params:
        stage=report_stage.figures_params(SUITE),
    script:
        "../scripts/figures.py"


rule calibration:
    input:
        world=L.world_json,
        base_rates=L.passrates(),
        summary=L.summary,
    output:
        record=L.calibration_json,
        figure=report(L.calibration_png, category="Figures", caption="../report/calibration.rst"),
    log:
        L.log("calibration.log"),
    benchmark:
        L.bench("calibration.tsv")
    params:
        method="uniform-fkl",
    script:
        "../scripts/calibration.py"


rule ablation_summary:
    input:
        L.summary,
    output:
        L.ablation_summary,
    log:
        L.log("ablation_summary.log"),
    benchmark:
        L.bench("ablation_summary.tsv")
    params:
        stage=report_stage.ablation_params(SUITE),
    script:
        "../scripts/ablation_summary.py"
