using MetaCompute.Api.Data;
using MetaCompute.Api.Reservations;

namespace MetaCompute.Api.Tests;

/// <summary>The price book and its one rounding rule, as tables.</summary>
public sealed class PricingTests
{
    private static readonly PoolPrices H100 = new() { OnDemand = 2.49m, Reserved = 1.992m, Spot = 0.996m, Internal = 0.8715m };

    [Theory]
    [InlineData(1, "1.992")]
    [InlineData(23, "1.992")]
    [InlineData(24, "1.8924")]
    [InlineData(167, "1.8924")]
    [InlineData(168, "1.7928")]
    [InlineData(671, "1.7928")]
    [InlineData(672, "1.6932")]
    public void Reserved_blocks_are_discounted_by_committed_length(int hours, string expected) =>
        Assert.Equal(decimal.Parse(expected), Pricing.PricePerGpuHour(H100, ReservationTier.Reserved, TimeSpan.FromHours(hours), 0.9));

    [Theory]
    [InlineData(0.0, "0.996")]
    [InlineData(0.5, "1.3695")]
    [InlineData(0.9, "2.20614")]
    [InlineData(1.0, "2.49")]
    [InlineData(1.5, "2.49")]
    public void Spot_moves_from_its_floor_to_the_on_demand_price_with_utilisation_squared(double utilisation, string expected) =>
        Assert.Equal(decimal.Parse(expected), Pricing.PricePerGpuHour(H100, ReservationTier.Spot, TimeSpan.FromHours(1), utilisation));

    [Fact]
    public void On_demand_is_at_list_and_internal_at_cost_whatever_the_length_or_load()
    {
        Assert.Equal(2.49m, Pricing.PricePerGpuHour(H100, ReservationTier.OnDemand, TimeSpan.FromDays(20), 1));
        Assert.Equal(0.8715m, Pricing.PricePerGpuHour(H100, ReservationTier.Internal, TimeSpan.FromDays(20), 1));
    }

    [Theory]
    [InlineData("2.49", 8, 3600, "19.92")]
    [InlineData("2.49", 1, 1, "0.000692")]       // 0.00069166… rounds up
    [InlineData("0.0018", 1, 1, "0.000001")]     // 0.0000005 exactly: half away from zero
    [InlineData("1.992", 16, 86400, "764.928")]
    public void A_total_is_price_times_gpus_times_exact_hours_rounded_once_to_the_micro_dollar(string price, int gpus, int seconds, string expected)
    {
        var start = new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);
        Assert.Equal(decimal.Parse(expected), Pricing.Total(decimal.Parse(price), gpus, start, start.AddSeconds(seconds)));
    }

    [Theory]
    [InlineData(8 * 24, "100.000001", "100.000001")]   // a week or more ahead: all of it
    [InlineData(7 * 24, "100", "100")]
    [InlineData(7 * 24 - 1, "100", "50")]               // less: half
    [InlineData(1, "0.000001", "0.000001")]             // half of a micro-dollar rounds away from zero
    [InlineData(0, "100", "0")]                         // from the start: nothing
    [InlineData(-5, "100", "0")]
    public void Cancelling_a_reserved_block_refunds_by_the_published_rule(int hoursBeforeStart, string paid, string refund)
    {
        var start = new DateTimeOffset(2026, 12, 10, 0, 0, 0, TimeSpan.Zero);
        Assert.Equal(decimal.Parse(refund), Pricing.ReservedRefund(decimal.Parse(paid), start, start.AddHours(-hoursBeforeStart)));
    }
}
