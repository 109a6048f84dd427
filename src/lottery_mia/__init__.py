"""lottery-mia: membership-inference attacks on lottery-ticket networks.

The package holds all logic of the pipeline; the Snakemake scripts in ``workflow/scripts``
only map ``snakemake.input/params/output`` onto one call of :mod:`lottery_mia.jobs`. The
layers, from the DAG side down (docs/structure.md):

- :mod:`lottery_mia.config`    the typed config: every key, its type, range, default, meaning
- :mod:`lottery_mia.plan`      the grid planned from the config: every network, model and job
- :mod:`lottery_mia.layout`    where every result lives (keys <-> folders <-> wildcards)
- :mod:`lottery_mia.jobs`      one entry point per rule (read inputs, call the library, write)
- the library: :mod:`~lottery_mia.datasets`, :mod:`~lottery_mia.membership`,
  :mod:`~lottery_mia.data`, :mod:`~lottery_mia.networks`, :mod:`~lottery_mia.masks`,
  :mod:`~lottery_mia.pruning` (registry of methods), :mod:`~lottery_mia.recipe`,
  :mod:`~lottery_mia.training` (the loop), :mod:`~lottery_mia.scoring`,
  :mod:`~lottery_mia.confidences`, :mod:`~lottery_mia.attacks` (registry of attacks),
  :mod:`~lottery_mia.stats.metrics`, :mod:`~lottery_mia.reporting.summaries`, :mod:`~lottery_mia.reporting.tables`,
  :mod:`~lottery_mia.figures` (registry of figures), :mod:`~lottery_mia.reporting.report`,
  :mod:`~lottery_mia.devices`, :mod:`~lottery_mia.distributed` (multi-GPU training
  jobs), :mod:`~lottery_mia.locks`, :mod:`~lottery_mia.checkpoints`,
  :mod:`~lottery_mia.cluster` (checks of the cluster profile);
- auditing a model the pipeline did not train: :mod:`lottery_mia.audit` and its command
  line, :mod:`lottery_mia.cli` (``lottery-mia audit``), over the same attack code;
- the words of the result tables: :mod:`lottery_mia.vocabulary`.
"""

__version__ = "0.1.0"
