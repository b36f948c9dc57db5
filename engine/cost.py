"""What the additional region costs: bytes stored per region and bytes copied between regions,
priced from a table in the configuration (the defaults are examples, not quotes)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from engine.model import Provider

GB = 10**9


class ProviderPrices(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: US dollars per GB stored for a month in the secondary region
    storage_per_gb_month: float = Field(ge=0)
    #: US dollars per GB copied from one region to another of the same provider
    transfer_per_gb: float = Field(ge=0)


#: Example list prices (standard storage class, inter-region transfer within a continent)
#: as published in 2025; edit [cost.<provider>] in the configuration for your contract.
DEFAULT_PRICES: dict[Provider, ProviderPrices] = {
    Provider.AWS: ProviderPrices(storage_per_gb_month=0.023, transfer_per_gb=0.02),
    Provider.GOOGLE: ProviderPrices(storage_per_gb_month=0.020, transfer_per_gb=0.02),
    Provider.AZURE: ProviderPrices(storage_per_gb_month=0.0184, transfer_per_gb=0.02),
}


class CostConfig(BaseModel):
    """``[cost.aws]``, ``[cost.google]``, ``[cost.azure]``: prices replacing the examples."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    aws: ProviderPrices = DEFAULT_PRICES[Provider.AWS]
    google: ProviderPrices = DEFAULT_PRICES[Provider.GOOGLE]
    azure: ProviderPrices = DEFAULT_PRICES[Provider.AZURE]
    currency: str = "USD"

    def prices(self, provider: Provider) -> ProviderPrices:
        prices: ProviderPrices = getattr(self, provider.value)
        return prices


@dataclass(frozen=True)
class RegionCost:
    service: str
    region: str
    role: str
    bytes_stored: int
    bytes_transferred: int
    storage_cost_month: float
    transfer_cost: float


def price(service: str, region: str, role: str, stored: int, transferred: int,
          prices: ProviderPrices) -> RegionCost:
    """The cost of one region of one service: storage per month plus what was copied."""
    return RegionCost(service, region, role, stored, transferred,
                      stored / GB * prices.storage_per_gb_month,
                      transferred / GB * prices.transfer_per_gb)
