"""Model versions as users see them: the manager (find, verify, activate, delete, trust),
registration of trained models, comparison, export and import."""
from src.training.models.manager import ModelManager, check_task

__all__ = ["ModelManager", "check_task"]
