def eval_model_input(wc):
    if wc.method == "base":
        return world_inputs()
    return [f"{R}/runs/{wc.method}/seed{wc.seed}/run.json"]


rule evaluate:
    input:
        eval_model_input,
    output:
        [f"{R}/eval/{{method}}/seed{{seed}}/step{{step}}/{name}.json" for name in EVAL_NAMES],
    log:
        f"{LOGS}/eval/{{method}}_seed{{seed}}_step{{step}}.log",
    benchmark:
        f"{BENCH}/eval/{{method}}_seed{{seed}}_step{{step}}.tsv"
    params:
        suite=SUITE.as_dict(),
        out_dir=lambda wc: f"{R}/eval/{wc.method}/seed{wc.seed}/step{wc.step}",
    threads: 1
    resources:
        gpu=SUITE.resources.gpus_eval,
    script:
        "../scripts/evaluate.py"
