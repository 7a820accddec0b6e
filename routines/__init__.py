"""Routines: agent prompts on CRON through Celery Beat (built in the routines issue)."""
