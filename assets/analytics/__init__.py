from assets.analytics.claims import claim_verdicts, every_claim_has_a_verdict
from assets.analytics.data_quality import data_quality_findings_asset
from assets.analytics.decomposition import (
    reconciliation_check,
    selloff_decomposition_asset,
    selloff_rollup_asset,
)
from assets.analytics.discovery import candidates_consistent, episode_candidates_asset
from assets.analytics.factor_attribution import factor_attribution_asset
from assets.analytics.rotation import rotation_asset
from assets.analytics.valuation_spread import valuation_spread_asset
from assets.analytics.windows import selloff_windows_asset

analytics_assets = [selloff_windows_asset, selloff_decomposition_asset, selloff_rollup_asset,
                    factor_attribution_asset, rotation_asset, valuation_spread_asset,
                    claim_verdicts, data_quality_findings_asset,
                    episode_candidates_asset]
analytics_checks = [reconciliation_check, every_claim_has_a_verdict, candidates_consistent]

__all__ = ["analytics_assets", "analytics_checks"]
