# One job per model: the base student per seed, and every budget of one run per job (each lm-eval call
# loads one checkpoint; one job per run saves the interpreter start-up and imports per budget).


def eval_outputs(method, steps):
    return [L.eval_json(method, "{seed}", t, name) for t in steps for name in EVAL_NAMES]


rule evaluate_base:
    input:
        world_inputs(),
    output:
        eval_outputs("base", [0]),
    log:
        L.log("eval", "base_seed{seed}.log"),
    benchmark:
        L.bench("eval", "base_seed{seed}.tsv")
    params:
        stage=lambda wc: evaluate_stage.params(SUITE, "base", wc.seed, [0]),
    threads: 1
    resources:
        gpu=SUITE.resources.gpus_eval,
    script:
        "../scripts/evaluate.py"


rule evaluate_run:
    input:
        run=L.run_json("{method}", "{seed}"),
    output:
        eval_outputs("{method}", SUITE.budgets),
    log:
        L.log("eval", "{method}_seed{seed}.log"),
    benchmark:
        L.bench("eval", "{method}_seed{seed}.tsv")
    wildcard_constraints:
        method=r"(?!base$)[a-z0-9][a-z0-9._-]*",
    params:
        stage=lambda wc: evaluate_stage.params(SUITE, wc.method, wc.seed, list(SUITE.budgets)),
    threads: 1
    resources:
        gpu=SUITE.resources.gpus_eval,
    script:
        "../scripts/evaluate.py"
