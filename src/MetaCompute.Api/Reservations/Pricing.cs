using MetaCompute.Api.Data;

namespace MetaCompute.Api.Reservations;

/// <summary>
/// The price book. Money is exact decimals in USD. The rounding rule, everywhere: an amount is computed exactly and
/// rounded once, half away from zero, to the micro-dollar (6 decimals). A total is price per GPU-hour × GPUs × hours,
/// with hours exact (seconds / 3600). A reservation keeps the price per GPU-hour it was sold at.
/// </summary>
public static class Pricing
{
    public const string Currency = "USD";

    /// <summary>
    /// Reserved blocks: the pool's reserved rate, less a discount by committed length (hours at least, discount):
    /// under a day none, a day 5 %, a week 10 %, four weeks 15 %.
    /// </summary>
    public static readonly IReadOnlyList<(int MinHours, decimal Discount)> ReservedLengthDiscounts =
        [(24 * 28, 0.15m), (24 * 7, 0.10m), (24, 0.05m), (0, 0m)];

    /// <summary>
    /// The price per GPU-hour for a tier: on-demand at list; reserved by length (above); spot between the pool's spot
    /// floor and the on-demand price, by the pool's utilisation <paramref name="utilisation"/> (0–1) squared, so it
    /// stays near the floor while the pool is idle and climbs steeply as it fills; internal at cost.
    /// </summary>
    public static decimal PricePerGpuHour(PoolPrices prices, ReservationTier tier, TimeSpan length, double utilisation) => tier switch
    {
        ReservationTier.Reserved => Round(prices.Reserved * (1 - ReservedLengthDiscounts.First(d => length.TotalHours >= d.MinHours).Discount)),
        ReservationTier.OnDemand => prices.OnDemand,
        ReservationTier.Spot => Round(prices.Spot + (prices.OnDemand - prices.Spot) * (decimal)Math.Pow(Math.Clamp(utilisation, 0, 1), 2)),
        ReservationTier.Internal => prices.Internal,
        _ => throw new ArgumentOutOfRangeException(nameof(tier)),
    };

    public static decimal Total(decimal pricePerGpuHour, int gpuCount, DateTimeOffset start, DateTimeOffset end) =>
        ForGpuSeconds(pricePerGpuHour, (decimal)gpuCount * (end - start).Ticks / TimeSpan.TicksPerSecond);

    public static decimal ForGpuSeconds(decimal pricePerGpuHour, decimal gpuSeconds) => Round(pricePerGpuHour * gpuSeconds / 3600m);

    /// <summary>
    /// What cancelling a reserved block refunds of what was paid for it: all of it 7 days or more before the start,
    /// half of it before the start, nothing once it has started.
    /// </summary>
    public static decimal ReservedRefund(decimal paid, DateTimeOffset start, DateTimeOffset cancelledAt) =>
        cancelledAt >= start ? 0m : start - cancelledAt >= FullRefundNotice ? paid : Round(paid / 2);

    public static readonly TimeSpan FullRefundNotice = TimeSpan.FromDays(7);

    public static decimal Round(decimal amount) => decimal.Round(amount, 6, MidpointRounding.AwayFromZero);
}
