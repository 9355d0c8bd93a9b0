using MetaCompute.Api.Data;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace MetaCompute.Api.Reservations;

public sealed class QuotaOptions
{
    /// <summary>Max concurrent GPUs per tenant per pool when an operator has set no quota.</summary>
    public int DefaultMaxConcurrentGpus { get; set; } = 512;
}

public static class Quotas
{
    public const string ExceededType = Infrastructure.Problems.BaseUri + "quota-exceeded";

    /// <summary>How far back the decider loads live reservations: offerings may start a few minutes in the past.</summary>
    public static readonly TimeSpan LookBack = TimeSpan.FromHours(1);

    /// <summary>
    /// Loads, tracked, what the quota checks of a batch need: every quota and every live reservation of the batch's
    /// tenants in the pool. Each check then reads the unit of work, which also holds the batch's own unsaved changes.
    /// </summary>
    public static async Task LoadAsync(MetaComputeDbContext db, string poolId, IReadOnlyCollection<Guid> tenantIds, DateTimeOffset now,
        CancellationToken ct)
    {
        await using var batch = new NpgsqlBatch((NpgsqlConnection)db.Database.GetDbConnection())
        {
            BatchCommands = { LimitsCommand(poolId, tenantIds), LiveCommand(poolId, tenantIds, now - LookBack) },
        };
        await using var reader = await batch.ExecuteReaderAsync(ct);
        await AttachLimitsAsync(db, poolId, reader, ct);
        await reader.NextResultAsync(ct);
        await AttachLiveAsync(db, reader, ct);
    }

    /// <summary>The tenants' quota rows in the pool, as a statement the decider sends with the pool's lock.</summary>
    public static NpgsqlBatchCommand LimitsCommand(string poolId, IReadOnlyCollection<Guid> tenantIds) =>
        new("SELECT tenant_id, max_concurrent_gpus FROM tenant_quotas WHERE pool_id = $1 AND tenant_id = ANY($2)")
        {
            Parameters = { new() { Value = poolId }, new() { Value = tenantIds.ToArray() } },
        };

    /// <summary>Tracks the quota rows read by <see cref="LimitsCommand"/>, as an EF query would.</summary>
    public static async Task AttachLimitsAsync(MetaComputeDbContext db, string poolId, NpgsqlDataReader reader, CancellationToken ct)
    {
        while (await reader.ReadAsync(ct))
        {
            var quota = new TenantQuota { TenantId = reader.GetGuid(0), PoolId = poolId, MaxConcurrentGpus = reader.GetInt32(1) };
            if (!db.TenantQuotas.Local.Any(q => q.TenantId == quota.TenantId && q.PoolId == poolId))
            {
                db.TenantQuotas.Attach(quota);
            }
        }
    }

    /// <summary>
    /// The tenants' live reservations in the pool with their leases, for the quota sweeps; the decider sends it with the
    /// pool's lock. Live since <paramref name="since"/> (the decider takes it before the lock: an earlier time only
    /// reads more).
    /// </summary>
    public static NpgsqlBatchCommand LiveCommand(string poolId, IReadOnlyCollection<Guid> tenantIds, DateTimeOffset since) => new("""
        SELECT r.id, r.tenant_id, r.pool_id, r.tier, r.status, r.gpu_count, r.start_at, r.end_at, r.single_fabric_island,
               r.price_per_gpu_hour, r.total_price, r.currency, r.created_at, r.updated_at, r.cancelled_at,
               r.ending_soon_notified_at, r.wait_until, r.recall_at, r.xmin,
               l.id, l.pool_id, l.start_at, l.end_at, l.created_at, l.degraded_since
        FROM reservations r
        LEFT JOIN leases l ON l.reservation_id = r.id
        WHERE r.pool_id = $1 AND r.tenant_id = ANY($2) AND r.end_at > $3 AND r.status IN ('Scheduled', 'Active')
        """)
    {
        Parameters = { new() { Value = poolId }, new() { Value = tenantIds.ToArray() }, new() { Value = since } },
    };

    /// <summary>Tracks the reservations read by <see cref="LiveCommand"/> with their leases, as an EF query would (one already tracked stays as it is).</summary>
    public static async Task AttachLiveAsync(MetaComputeDbContext db, NpgsqlDataReader reader, CancellationToken ct)
    {
        DateTimeOffset? At(int column) => reader.IsDBNull(column) ? null : reader.GetFieldValue<DateTimeOffset>(column);
        while (await reader.ReadAsync(ct))
        {
            var reservation = new Reservation
            {
                Id = reader.GetGuid(0),
                TenantId = reader.GetGuid(1),
                PoolId = reader.GetString(2),
                Tier = Enum.Parse<ReservationTier>(reader.GetString(3)),
                Status = Enum.Parse<ReservationStatus>(reader.GetString(4)),
                GpuCount = reader.GetInt32(5),
                StartAt = reader.GetFieldValue<DateTimeOffset>(6),
                EndAt = reader.GetFieldValue<DateTimeOffset>(7),
                SingleFabricIsland = reader.GetBoolean(8),
                PricePerGpuHour = reader.GetDecimal(9),
                TotalPrice = reader.GetDecimal(10),
                Currency = reader.GetString(11),
                CreatedAt = reader.GetFieldValue<DateTimeOffset>(12),
                UpdatedAt = reader.GetFieldValue<DateTimeOffset>(13),
                CancelledAt = At(14),
                EndingSoonNotifiedAt = At(15),
                WaitUntil = At(16),
                RecallAt = At(17),
                Version = reader.GetFieldValue<uint>(18),
            };
            if (!reader.IsDBNull(19))
            {
                reservation.Lease = new Lease
                {
                    Id = reader.GetGuid(19),
                    ReservationId = reservation.Id,
                    PoolId = reader.GetString(20),
                    StartAt = reader.GetFieldValue<DateTimeOffset>(21),
                    EndAt = reader.GetFieldValue<DateTimeOffset>(22),
                    CreatedAt = reader.GetFieldValue<DateTimeOffset>(23),
                    DegradedSince = At(24),
                };
            }

            if (db.Reservations.Local.FindEntry(reservation.Id) is null)
            {
                db.Reservations.Attach(reservation);
            }
        }
    }

    /// <summary>
    /// The tenant's quota and its peak concurrent GPUs in the pool over <c>[start, end)</c> if <paramref name="gpuCount"/>
    /// more were added. Runs in the pool's decider after <see cref="LoadAsync"/>, under the pool's lock, so the check and
    /// the booking are one atomic step.
    /// </summary>
    public static (int Limit, int PeakWithRequest) Check(MetaComputeDbContext db, QuotaOptions options, Guid tenantId, string poolId,
        DateTimeOffset start, DateTimeOffset end, int gpuCount)
    {
        var limit = db.TenantQuotas.Local.FirstOrDefault(q => q.TenantId == tenantId && q.PoolId == poolId)?.MaxConcurrentGpus
                    ?? options.DefaultMaxConcurrentGpus;
        var overlapping = db.Reservations.Local
            .Where(r => r.TenantId == tenantId && r.PoolId == poolId && r.StartAt < end && r.EndAt > start
                        && r.Status is ReservationStatus.Scheduled or ReservationStatus.Active)
            .ToList();

        // Sweep the window: the peak is reached at some reservation's start (or the window's).
        var changes = overlapping.SelectMany(r => new[] { (At: r.StartAt < start ? start : r.StartAt, Delta: r.GpuCount), (At: r.EndAt, Delta: -r.GpuCount) })
            .OrderBy(c => c.At).ThenBy(c => c.Delta);
        var running = 0;
        var peak = 0;
        foreach (var change in changes)
        {
            running += change.Delta;
            peak = Math.Max(peak, running);
        }

        return (limit, peak + gpuCount);
    }
}
