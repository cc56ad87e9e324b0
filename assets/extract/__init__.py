from assets.extract.datasets import build_extract_assets, extract_checks

__all__ = ["build_extract_assets", "extract_checks"]
