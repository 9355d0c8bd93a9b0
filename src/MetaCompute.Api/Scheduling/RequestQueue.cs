using MetaCompute.Api.Data;
using MetaCompute.Api.Events;
using MetaCompute.Api.Idempotency;
using MetaCompute.Api.Infrastructure;
using MetaCompute.Api.Reservations;
using MetaCompute.Scheduling;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;

namespace MetaCompute.Api.Scheduling;

/// <summary>
/// Requests that asked to wait for capacity (<c>waitForCapacity.maxWaitMinutes</c>): they are <c>pending</c> reservations
/// without a lease. Each tick the scheduler admits them per pool, in order — tier (internal, reserved, on-demand,
/// spot), then fair share (the tenant's GPU-hours in the pool over <see cref="SchedulerOptions.FairShareWindow"/>,
/// divided by its weight: least first), then age — and rejects those whose wait ran out. A request that cannot start
/// now is blocked; a later one may start ahead of it (backfill) only if every blocked request can still start at the
/// earliest time it could before.
/// </summary>
public static class RequestQueue
{
    public sealed record Result(int Admitted, int Rejected);

    public static Task<bool> AnyWaitingAsync(MetaComputeDbContext db, string poolId, CancellationToken ct) =>
        db.Reservations.AnyAsync(r => r.PoolId == poolId && r.Status == ReservationStatus.Pending, ct);

    /// <summary>Records the request as pending: 202, no lease yet; the scheduler admits or rejects it.</summary>
    public static async Task<Outcome> EnqueueAsync(MetaComputeDbContext db, PoolOccupancy index, Guid tenantId, BookingSpec spec,
        DateTimeOffset waitUntil, DateTimeOffset now, CancellationToken ct)
    {
        var reservation = ReservationEndpoints.NewReservation(tenantId, spec, ReservationStatus.Pending, spec.StartAt, spec.EndAt, index, now);
        reservation.WaitUntil = waitUntil;
        db.Reservations.Add(reservation);
        db.Append(EventTypes.ReservationPending, tenantId, reservation.Id, now, new
        {
            poolId = spec.Pool.Id,
            tier = WireEnum.Name(spec.Tier),
            gpuCount = spec.GpuCount,
            durationSeconds = (long)(spec.EndAt - spec.StartAt).TotalSeconds,
            waitUntil,
        });
        var response = await ReservationViews.ToResponseAsync(db, reservation, ct);
        return new Outcome(StatusCodes.Status202Accepted, response, $"/v1/reservations/{reservation.Id}");
    }

    public static async Task<Result> RunAsync(MetaComputeDbContext db, PoolOccupancyCache occupancy, SchedulerOptions options, QuotaOptions quotas,
        DateTimeOffset now, CancellationToken ct)
    {
        var pools = await db.Reservations.Where(r => r.Status == ReservationStatus.Pending).Select(r => r.PoolId).Distinct().OrderBy(p => p)
            .ToListAsync(ct);
        var total = new Result(0, 0);
        foreach (var poolId in pools)
        {
            db.ChangeTracker.Clear();
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            var result = await occupancy.LockedAsync(db, poolId, index => RunPoolAsync(db, index, tx, options, quotas, poolId, now, ct), ct);
            total = new Result(total.Admitted + result.Admitted, total.Rejected + result.Rejected);
        }

        return total;
    }

    private static async Task<Result> RunPoolAsync(MetaComputeDbContext db, PoolOccupancy index, IDbContextTransaction tx,
        SchedulerOptions options, QuotaOptions quotas, string poolId, DateTimeOffset now, CancellationToken ct)
    {
        var pool = await db.Pools.AsNoTracking().SingleAsync(p => p.Id == poolId, ct);
        var pending = await db.Reservations.Where(r => r.PoolId == poolId && r.Status == ReservationStatus.Pending).ToListAsync(ct);
        var rejected = 0;
        foreach (var late in pending.Where(r => r.WaitUntil <= now))
        {
            late.Status = ReservationStatus.Rejected;
            late.UpdatedAt = now;
            db.Append(EventTypes.ReservationRejected, late.TenantId, late.Id, late.WaitUntil!.Value, new
            {
                reason = "no capacity before the wait ran out",
                waitUntil = late.WaitUntil,
            });
            rejected++;
        }

        var tenantIds = pending.Select(r => r.TenantId).Distinct().ToList();
        var share = await FairShareAsync(db, poolId, tenantIds, now - options.FairShareWindow, now, ct);
        await Quotas.LoadAsync(db, poolId, tenantIds, now, ct);
        var queue = pending.Where(r => r.Status == ReservationStatus.Pending)
            .OrderBy(r => TierRank(r.Tier)).ThenBy(r => share[r.TenantId]).ThenBy(r => r.CreatedAt).ThenBy(r => r.Id)
            .ToList();

        var writes = new List<AllocationWrite>();
        var admitted = 0;
        var byId = queue.ToDictionary(r => r.Id);
        var startNow = BookingRules.StartAtOrAfter(null, now);
        var blocked = Admission.Run(index,
            queue.Select(r => new QueuedRequest(r.Id, r.GpuCount, r.StartAt, r.EndAt - r.StartAt, r.SingleFabricIsland,
                BookingRules.HoldbackFor(pool, r.Tier), r.WaitUntil!.Value)),
            startNow,
            (q, start) =>
            {
                var (limit, peak) = Quotas.Check(db, quotas, byId[q.Id].TenantId, poolId, start, start + q.Duration, q.GpuCount);
                return peak <= limit;
            },
            (q, start, placement) =>
            {
                var request = byId[q.Id];
                request.StartAt = start;
                request.EndAt = start + q.Duration;
                request.TotalPrice = Pricing.Total(request.PricePerGpuHour, request.GpuCount, request.StartAt, request.EndAt);
                request.UpdatedAt = now;
                writes.Add(LeaseGrants.Grant(db, index, request, placement, now, queuedSince: request.CreatedAt).Write);
                admitted++;
            });

        // First-party demand still blocked may take spot capacity back, as it may when it books directly.
        foreach (var request in blocked.Select(b => byId[b.Request.Id]).Where(r => r.Tier == ReservationTier.Internal))
        {
            var start = request.StartAt > startNow ? request.StartAt : startNow;
            var spec = new BookingSpec(pool, request.Tier, request.GpuCount, start, start + (request.EndAt - request.StartAt), request.SingleFabricIsland);
            if (await SpotRecalls.TryAsync(db, index, spec, now, ct) is not { } recall)
            {
                continue;
            }

            request.StartAt = recall.Start;
            request.EndAt = recall.End;
            request.TotalPrice = Pricing.Total(request.PricePerGpuHour, request.GpuCount, request.StartAt, request.EndAt);
            request.UpdatedAt = now;
            writes.AddRange(recall.Writes);
            writes.Add(LeaseGrants.Grant(db, index, request, recall.Placement, now, queuedSince: request.CreatedAt).Write);
            admitted++;
        }

        await db.SaveChangesAsync(ct);
        if (writes.Count > 0)
        {
            await using var batch = new NpgsqlBatch((NpgsqlConnection)db.Database.GetDbConnection(), (NpgsqlTransaction)tx.GetDbTransaction());
            foreach (var command in AllocationWriter.Commands(poolId, writes))
            {
                batch.BatchCommands.Add(command);
            }

            await batch.ExecuteNonQueryAsync(ct);
        }

        await PoolOccupancyCache.CommitAsync(db, tx, poolId, index, ct);
        return new Result(admitted, rejected);
    }

    /// <summary>First-party demand first, then blocks sold ahead, then on-demand, then spot.</summary>
    public static int TierRank(ReservationTier tier) => tier switch
    {
        ReservationTier.Internal => 0,
        ReservationTier.Reserved => 1,
        ReservationTier.OnDemand => 2,
        _ => 3,
    };

    /// <summary>Each tenant's GPU-hours held in the pool over <c>[from, to)</c>, divided by its fair-share weight.</summary>
    private static async Task<Dictionary<Guid, double>> FairShareAsync(MetaComputeDbContext db, string poolId, List<Guid> tenantIds,
        DateTimeOffset from, DateTimeOffset to, CancellationToken ct)
    {
        var used = await db.Database.SqlQuery<TenantUsage>($"""
            SELECT t.id AS tenant_id, t.fair_share_weight AS weight,
                   coalesce(sum(r.gpu_count * extract(epoch FROM least(l.end_at, {to}) - greatest(l.start_at, {from})) / 3600.0), 0)::float8 AS gpu_hours
            FROM tenants t
            LEFT JOIN reservations r ON r.tenant_id = t.id AND r.pool_id = {poolId}
                 AND NOT (r.status = 'Cancelled' AND r.cancelled_at <= r.start_at)
            LEFT JOIN leases l ON l.reservation_id = r.id AND l.start_at < {to} AND l.end_at > {from}
            WHERE t.id = ANY({tenantIds.ToArray()})
            GROUP BY t.id, t.fair_share_weight
            """).ToListAsync(ct);
        return used.ToDictionary(u => u.TenantId, u => u.GpuHours / u.Weight);
    }

    private sealed record TenantUsage(Guid TenantId, int Weight, double GpuHours);
}
