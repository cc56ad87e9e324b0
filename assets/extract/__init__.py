from assets.extract.datasets import DAILY_DATASETS, extract_assets, extract_checks

__all__ = ["DAILY_DATASETS", "extract_assets", "extract_checks"]
