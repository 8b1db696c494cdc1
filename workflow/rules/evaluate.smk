# One job per model: the base student per seed, and every budget of one run per job (each lm-eval call
# loads one checkpoint; one job per run saves the interpreter start-up and imports per budget).


def eval_outputs(method, steps):
    return [f"{R}/eval/{method}/seed{{seed}}/step{t}/{name}.json" for t in steps for name in EVAL_NAMES]


rule evaluate_base:
    input:
        world_inputs(),
    output:
        eval_outputs("base", [0]),
    log:
        f"{LOGS}/eval/base_seed{{seed}}.log",
    benchmark:
        f"{BENCH}/eval/base_seed{{seed}}.tsv"
    params:
        suite=SUITE_DICT,
        method="base",
        steps=[0],
    threads: 1
    resources:
        gpu=SUITE.resources.gpus_eval,
    script:
        "../scripts/evaluate.py"


rule evaluate_run:
    input:
        run=f"{R}/runs/{{method}}/seed{{seed}}/run.json",
    output:
        eval_outputs("{method}", SUITE.budgets),
    log:
        f"{LOGS}/eval/{{method}}_seed{{seed}}.log",
    benchmark:
        f"{BENCH}/eval/{{method}}_seed{{seed}}.tsv"
    wildcard_constraints:
        method=r"(?!base$)[a-z0-9][a-z0-9._-]*",
    params:
        suite=SUITE_DICT,
        method=lambda wc: wc.method,
        steps=list(SUITE.budgets),
    threads: 1
    resources:
        gpu=SUITE.resources.gpus_eval,
    script:
        "../scripts/evaluate.py"
