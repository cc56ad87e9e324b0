from assets.extract.datasets import extract_assets, extract_checks

__all__ = ["extract_assets", "extract_checks"]
