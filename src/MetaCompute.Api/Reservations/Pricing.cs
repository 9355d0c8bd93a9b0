using MetaCompute.Api.Data;

namespace MetaCompute.Api.Reservations;

/// <summary>
/// Prices are exact decimals in USD. The rule: a total is price per GPU-hour × GPUs × hours, where hours are exact
/// (seconds / 3600), rounded once, half away from zero, to the micro-dollar (6 decimals).
/// </summary>
public static class Pricing
{
    public const string Currency = "USD";

    public static decimal PricePerGpuHour(PoolPrices prices, ReservationTier tier) => tier switch
    {
        ReservationTier.Reserved => prices.Reserved,
        ReservationTier.OnDemand => prices.OnDemand,
        ReservationTier.Spot => prices.Spot,
        ReservationTier.Internal => prices.Internal,
        _ => throw new ArgumentOutOfRangeException(nameof(tier)),
    };

    public static decimal Total(decimal pricePerGpuHour, int gpuCount, DateTimeOffset start, DateTimeOffset end)
    {
        var seconds = (decimal)(end - start).Ticks / TimeSpan.TicksPerSecond;
        return decimal.Round(pricePerGpuHour * gpuCount * seconds / 3600m, 6, MidpointRounding.AwayFromZero);
    }
}
