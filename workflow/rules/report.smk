EVAL_FILES = [
    f"{R}/eval/{m}/seed{s}/step{t}/{name}.json" for (m, s, t) in EVAL_CELLS for name in EVAL_NAMES
]
RUN_FILES = [f"{R}/runs/{m}/seed{s}/run.json" for m in SUITE.method_ids for s in SUITE.seeds]
AFTER_RATES = [f"{R}/passrates/{m}/seed{SUITE.seeds[0]}/passrates.jsonl" for m in SUITE.after_passrate_methods]


rule summary:
    input:
        EVAL_FILES,
    output:
        report(f"{R}/summary.csv", category="Tables", caption="../report/summary.rst"),
    log:
        f"{LOGS}/summary.log",
    benchmark:
        f"{BENCH}/summary.tsv"
    script:
        "../scripts/summary.py"


rule tables:
    input:
        summary=f"{R}/summary.csv",
        snr=[f"{R}/snr/snr.json"] if SUITE.snr.enabled else [],
    output:
        flag=f"{R}/tables/done.flag",
        tables=report(directory(f"{R}/tables/all"), category="Tables", caption="../report/tables.rst",
                      patterns=["{name}.md"]),
    log:
        f"{LOGS}/tables.log",
    benchmark:
        f"{BENCH}/tables.tsv"
    params:
        suite=SUITE_DICT,
    script:
        "../scripts/tables.py"


rule figures:
    input:
        summary=f"{R}/summary.csv",
        snr=[f"{R}/snr/snr.json"] if SUITE.snr.enabled else [],
        base_rates=f"{R}/passrates/base/passrates.jsonl",
        after_rates=AFTER_RATES,
        runs=RUN_FILES,
    output:
        flag=f"{R}/figures/done.flag",
        figures=report(directory(f"{R}/figures/png"), category="Figures", caption="../report/figures.rst",
                       patterns=["{name}.png"]),
    log:
        f"{LOGS}/figures.log",
    benchmark:
        f"{BENCH}/figures.tsv"
    params:
        suite=SUITE_DICT,
    script:
        "../scripts/figures.py"


rule calibration:
    input:
        world=f"{R}/world/world.json",
        base_rates=f"{R}/passrates/base/passrates.jsonl",
        summary=f"{R}/summary.csv",
    output:
        record=f"{R}/calibration/calibration.json",
        figure=report(f"{R}/calibration/calibration.png", category="Figures",
                      caption="../report/calibration.rst"),
    log:
        f"{LOGS}/calibration.log",
    benchmark:
        f"{BENCH}/calibration.tsv"
    params:
        method="uniform-fkl",
    script:
        "../scripts/calibration.py"


rule ablation_summary:
    input:
        f"{R}/summary.csv",
    output:
        f"{R}/ablation_summary.csv",
    log:
        f"{LOGS}/ablation_summary.log",
    benchmark:
        f"{BENCH}/ablation_summary.tsv"
    params:
        config=SUITE_DICT["config"],
    script:
        "../scripts/ablation_summary.py"
