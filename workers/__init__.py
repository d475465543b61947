"""The RQ entry point only: ``python -m workers`` starts a worker for the engine's jobs
(``webhookapp.engine.jobs``) with the scheduler and the periodic jobs; ``jobs.py`` keeps the jobs'
former names for jobs queued before an upgrade."""
