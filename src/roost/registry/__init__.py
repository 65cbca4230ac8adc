"""Model repository: experiments, runs, params, metrics, tags, artifacts, registered models and aliases."""
