from assets.extract.datasets import DAILY_DATASETS, extract_assets, extract_checks
from assets.extract.freshness import freshness_check_keys, freshness_checks

__all__ = ["DAILY_DATASETS", "extract_assets", "extract_checks", "freshness_check_keys",
           "freshness_checks"]
