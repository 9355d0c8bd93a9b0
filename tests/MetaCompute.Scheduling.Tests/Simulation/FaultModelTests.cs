using MetaCompute.Simulation.Faults;

namespace MetaCompute.Scheduling.Tests.Simulation;

public sealed class FaultModelTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly int[] Nodes = Enumerable.Range(1, 2048).ToArray(); // 16,384 GPUs, as in the reference run

    public static TheoryData<int> Seeds => new() { 1, 2, 3, 4, 5 };

    /// <summary>
    /// 54 simulated days on 16,384 GPUs should give about 419 interruptions. The count is Poisson (σ ≈ 20), so the
    /// tolerance is ±15 % (about three σ); each category's share must be within 6 points of the table's.
    /// </summary>
    [Theory]
    [MemberData(nameof(Seeds))]
    public void Fifty_four_days_on_the_reference_fleet_match_the_tables_count_and_mix(int seed)
    {
        var faults = new FaultModel(FaultMix.Llama3, seed).Faults(Nodes, T0, T0.AddDays(54)).ToList();

        Assert.InRange(faults.Count, 356, 482);
        var expected = FaultMix.Llama3.Causes.GroupBy(c => c.Category).ToDictionary(g => g.Key, g => g.Sum(c => c.Count) / 419.0);
        foreach (var (category, share) in expected)
        {
            var actual = faults.Count(f => f.Cause.Category == category) / (double)faults.Count;
            Assert.InRange(actual, share - 0.06, share + 0.06);
        }
    }

    [Fact]
    public void The_same_seed_gives_the_same_faults_in_time_order_within_the_window()
    {
        var a = new FaultModel(FaultMix.Llama3, 9).Faults(Nodes, T0, T0.AddDays(10)).ToList();
        var b = new FaultModel(FaultMix.Llama3, 9).Faults(Nodes, T0, T0.AddDays(10)).ToList();
        Assert.Equal(a, b);
        Assert.Equal(a.OrderBy(f => f.At), a);
        Assert.All(a, f => Assert.InRange(f.At, T0, T0.AddDays(10)));
        Assert.All(a, f => Assert.True(f.RepairedAt > f.At));
    }

    [Fact]
    public void The_rate_scales_with_the_fleet()
    {
        var small = new FaultModel(FaultMix.Llama3, 3).Faults(Nodes.Take(256).ToArray(), T0, T0.AddDays(432)).Count();
        // 256 nodes (an eighth of the fleet) for 432 days (eight times as long): about 419 again.
        Assert.InRange(small, 356, 482);
    }
}
