"""The pipeline layer: the one place the Snakemake workflow talks to.

Three floors, each talking only to the one below: the workflow (rules and 3–6-line scripts) → this layer
(one module per stage; each a function of a config slice and explicit paths, plus ``params(suite, …)``, the
slice that is the rule's Snakemake ``params`` and so the job's identity) → the library (math, models,
trainer, tasks), which knows nothing of Snakemake.

- :mod:`.suite`: the config resolved and checked at parse time; :mod:`.config_checks`: what a schema cannot check;
- :mod:`.layout`: every path under ``results/``;
- stages: :mod:`.world`, :mod:`.passrates`, :mod:`.references`, :mod:`.teacher_cache`, :mod:`.snr`,
  :mod:`.distill`, :mod:`.evaluate`, :mod:`.report`;
- :mod:`.cells` (logging, failed-cell records), :mod:`.failures` (cell vs infrastructure failures),
  :mod:`.results_lock` (one workflow per results directory), :mod:`.schema_errors`.

Nothing is imported here: a report job imports only its stage.
"""
