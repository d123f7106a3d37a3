"""Settings packages: ``base`` reads the environment (the one place that does), ``local``,
``production`` and ``test`` adjust it for where the project runs."""
