using MetaCompute.Api.Data;
using Microsoft.EntityFrameworkCore;

namespace MetaCompute.Api.Scheduling;

public sealed class SchedulerOptions
{
    /// <summary>Whether this process runs the scheduler (one instance at a time holds the leader lock).</summary>
    public bool Enabled { get; set; } = true;

    public TimeSpan TickInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long before the end <c>reservation.ending_soon</c> is sent; EC2 Capacity Blocks warn 40 minutes ahead.</summary>
    public TimeSpan EndingSoonLead { get; set; } = TimeSpan.FromMinutes(40);

    /// <summary>How far back fair share looks at each tenant's GPU-hours when it orders queued requests.</summary>
    public TimeSpan FairShareWindow { get; set; } = TimeSpan.FromDays(7);
}

/// <summary>
/// Moves reservations through time: <c>scheduled → active</c> at the start (through a provisioning step with its own
/// event), <c>reservation.ending_soon</c> a set time before the end, <c>→ completed</c> at the end, and a spot lease under
/// recall <c>→ recalled</c> when its notice runs out. Each step is one
/// set-based statement that changes state and appends the events together; events carry the boundary's time, not the
/// tick's, so a late tick records what happened when it happened. Re-running a tick changes nothing. Each pool's
/// steps run under the pool's advisory lock, so they never race a batch of cancellations or extensions in that pool.
/// </summary>
public static class LifecycleTick
{
    public sealed record Result(int Activated, int EndingSoon, int Completed, int Recalled = 0);

    public static async Task<Result> RunAsync(MetaComputeDbContext db, SchedulerOptions options, DateTimeOffset now, CancellationToken ct)
    {
        var pools = await db.Reservations
            .Where(r => (r.Status == ReservationStatus.Scheduled && r.StartAt <= now)
                        || (r.Status == ReservationStatus.Active && r.EndAt - options.EndingSoonLead <= now)
                        || (r.Status == ReservationStatus.Scheduled || r.Status == ReservationStatus.Active) && r.RecallAt <= now)
            .Select(r => r.PoolId).Distinct().OrderBy(p => p).ToListAsync(ct);
        var total = new Result(0, 0, 0);
        foreach (var poolId in pools)
        {
            var result = await RunPoolAsync(db, options, poolId, now, ct);
            total = new Result(total.Activated + result.Activated, total.EndingSoon + result.EndingSoon, total.Completed + result.Completed,
                total.Recalled + result.Recalled);
        }

        return total;
    }

    private static async Task<Result> RunPoolAsync(MetaComputeDbContext db, SchedulerOptions options, string poolId, DateTimeOffset now,
        CancellationToken ct)
    {
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        await db.Database.ExecuteSqlAsync($"SELECT pg_advisory_xact_lock({PoolOccupancyCache.PoolLockKey(poolId)})", ct);
        var activated = await db.Database.ExecuteSqlAsync($"""
            WITH due AS (
                UPDATE reservations SET status = 'Active', updated_at = {now}
                WHERE pool_id = {poolId} AND status = 'Scheduled' AND start_at <= {now} AND (recall_at IS NULL OR recall_at > start_at)
                RETURNING id, tenant_id, start_at, gpu_count)
            INSERT INTO events (tenant_id, reservation_id, type, occurred_at, data)
            SELECT tenant_id, id, e.type, start_at, jsonb_build_object('gpuCount', gpu_count, 'startAt', start_at)
            FROM due CROSS JOIN (VALUES (1, {EventTypes.LeaseProvisioning}), (2, {EventTypes.ReservationActivated})) AS e(step, type)
            ORDER BY start_at, id, e.step
            """, ct);
        // A recalled spot lease ends when its notice does, whether or not it had started.
        var recalled = await db.Database.ExecuteSqlAsync($"""
            WITH due AS (
                UPDATE reservations SET status = 'Recalled', updated_at = {now}
                WHERE pool_id = {poolId} AND status IN ('Scheduled', 'Active') AND recall_at <= {now}
                RETURNING id, tenant_id, recall_at)
            INSERT INTO events (tenant_id, reservation_id, type, occurred_at, data)
            SELECT tenant_id, id, {EventTypes.ReservationRecalled}, recall_at, jsonb_build_object('recalledAt', recall_at)
            FROM due ORDER BY recall_at, id
            """, ct);
        var endingSoon = await db.Database.ExecuteSqlAsync($"""
            WITH due AS (
                UPDATE reservations SET ending_soon_notified_at = {now}
                WHERE pool_id = {poolId} AND status = 'Active' AND ending_soon_notified_at IS NULL AND recall_at IS NULL AND end_at - {options.EndingSoonLead} <= {now}
                RETURNING id, tenant_id, end_at)
            INSERT INTO events (tenant_id, reservation_id, type, occurred_at, data)
            SELECT tenant_id, id, {EventTypes.ReservationEndingSoon}, end_at - {options.EndingSoonLead}, jsonb_build_object('endAt', end_at)
            FROM due ORDER BY end_at, id
            """, ct);
        var completed = await db.Database.ExecuteSqlAsync($"""
            WITH due AS (
                UPDATE reservations SET status = 'Completed', updated_at = {now}
                WHERE pool_id = {poolId} AND status = 'Active' AND end_at <= {now}
                RETURNING id, tenant_id, end_at)
            INSERT INTO events (tenant_id, reservation_id, type, occurred_at, data)
            SELECT tenant_id, id, {EventTypes.ReservationCompleted}, end_at, jsonb_build_object('endAt', end_at)
            FROM due ORDER BY end_at, id
            """, ct);
        await tx.CommitAsync(ct);
        return new Result(activated / 2, endingSoon, completed, recalled);
    }
}
