using MetaCompute.Api.Data;
using MetaCompute.Simulation.Faults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace MetaCompute.Api.Scheduling;

public sealed class FaultOptions
{
    /// <summary>Whether the scheduler fails and repairs nodes by the fault model (<c>Simulation:Faults:Enabled</c>).</summary>
    public bool Enabled { get; set; }

    public int Seed { get; set; } = 1;

    /// <summary>
    /// Simulated seconds per real second. At 1 the default 4,096-GPU fleet sees about two faults a day, as the reference
    /// run's rate implies; 720 makes that about one a minute, with repairs 720 times shorter too.
    /// </summary>
    public double TimeScale { get; set; } = 1;
}

/// <summary>
/// Drives the seeded fault model from the scheduler's tick: the faults that fall in the simulated time since the last
/// tick fail their nodes now (through the same transition an operator uses, so leases are re-homed or degraded), and
/// nodes whose repair is due come back. The repair time lives on the node, so a new leader carries on where the old
/// one stopped. Each tick acts at its own time; it never writes into the future.
/// </summary>
public sealed class FaultInjector(IOptions<FaultOptions> options, PoolOccupancyCache occupancy, ILogger<FaultInjector>? logger = null)
{
    public const string Actor = "fault-model";

    private readonly FaultModel _model = new(FaultMix.Llama3, options.Value.Seed);
    private DateTimeOffset? _last;
    private int[] _fleet = [];

    public sealed record Result(int Failed, int Restored);

    public async Task<Result> TickAsync(MetaComputeDbContext db, DateTimeOffset now, CancellationToken ct)
    {
        var restored = 0;
        var repaired = await db.Nodes.Where(n => n.State == NodeState.Failed && n.RepairDueAt <= now).OrderBy(n => n.Id).Select(n => n.Id)
            .ToListAsync(ct);
        foreach (var nodeId in repaired)
        {
            var (status, _) = await NodeTransitions.ApplyAsync(db, occupancy, nodeId, NodeTransition.Restore, Actor, now, new { reason = "repaired" }, ct);
            if (status == NodeChangeStatus.Changed)
            {
                restored++;
                logger?.LogInformation("Fault model: node {NodeId} repaired and back in service", nodeId);
            }
        }

        if (_last is not { } last || _fleet.Length == 0)
        {
            // Faults fall uniformly over the whole fleet, as in the reference run; the fleet is read once per leader.
            _fleet = await db.Nodes.OrderBy(n => n.Id).Select(n => n.Id).ToArrayAsync(ct);
            _last = now;
            return new Result(0, restored);
        }

        var scale = options.Value.TimeScale;
        var failed = 0;
        foreach (var fault in _model.Faults(_fleet, last, last + (now - last) * scale))
        {
            var repairDueAt = now + fault.Cause.RepairTime / scale;
            var (status, _) = await NodeTransitions.ApplyAsync(db, occupancy, fault.NodeId, NodeTransition.Fail, Actor, now,
                new { cause = fault.Cause.Component, category = fault.Cause.Category, repairDueAt }, ct, repairDueAt);
            // A fault on a node that is already out changes nothing: the node is down either way.
            if (status == NodeChangeStatus.Changed)
            {
                failed++;
                logger?.LogInformation("Fault model: node {NodeId} failed ({Cause}, {Category}); repair due {RepairDueAt:u}, in {RepairMinutes:0.#} min",
                    fault.NodeId, fault.Cause.Component, fault.Cause.Category, repairDueAt, (repairDueAt - now).TotalMinutes);
            }
        }

        _last = now;
        return new Result(failed, restored);
    }
}
