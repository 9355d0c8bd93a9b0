namespace MetaCompute.Simulation.Faults;

/// <summary>A node taken out of service by a fault at <see cref="At"/>, back after the cause's repair time.</summary>
public sealed record NodeFault(DateTimeOffset At, int NodeId, FaultCause Cause)
{
    public DateTimeOffset RepairedAt => At + Cause.RepairTime;
}

/// <summary>
/// Seeded fault generator: interruptions arrive as a Poisson process at the mix's rate scaled to the fleet's GPUs;
/// each picks a cause by its observed share and a node uniformly. Same seed and fleet, same faults. No I/O.
/// </summary>
public sealed class FaultModel(FaultMix mix, int seed)
{
    private readonly Random _random = new(seed);
    private readonly int _totalCount = mix.Causes.Sum(c => c.Count);

    /// <summary>Every fault in <c>[from, to)</c> over the given nodes (8 GPUs each), in time order.</summary>
    public IEnumerable<NodeFault> Faults(IReadOnlyList<int> nodeIds, DateTimeOffset from, DateTimeOffset to)
    {
        var perDay = mix.RatePerGpuDay * nodeIds.Count * 8;
        if (perDay <= 0)
        {
            yield break;
        }

        for (var at = from + Gap(perDay); at < to; at += Gap(perDay))
        {
            yield return new NodeFault(at, nodeIds[_random.Next(nodeIds.Count)], PickCause());
        }
    }

    /// <summary>Exponential inter-arrival time for a Poisson process of <paramref name="perDay"/> events a day.</summary>
    private TimeSpan Gap(double perDay) => TimeSpan.FromDays(-Math.Log(1 - _random.NextDouble()) / perDay);

    private FaultCause PickCause()
    {
        var pick = _random.Next(_totalCount);
        foreach (var cause in mix.Causes)
        {
            pick -= cause.Count;
            if (pick < 0)
            {
                return cause;
            }
        }

        return mix.Causes[^1];
    }
}
