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

    /// <summary>
    /// The tenant's peak concurrent GPUs in the pool over <c>[start, end)</c> if <paramref name="gpuCount"/> more were
    /// added. Runs under the pool's lock, so the check and the booking are one atomic step.
    /// </summary>
    public static async Task<(int Limit, int PeakWithRequest)> CheckAsync(MetaComputeDbContext db, QuotaOptions options, Guid tenantId,
        string poolId, DateTimeOffset start, DateTimeOffset end, int gpuCount, CancellationToken ct)
    {
        // The quota and the overlapping reservations in one round trip.
        await using var command = new NpgsqlCommand("""
            SELECT coalesce((SELECT max_concurrent_gpus FROM tenant_quotas WHERE tenant_id = $1 AND pool_id = $2), $3),
                   r.start_at, r.end_at, r.gpu_count, r.id
            FROM (SELECT 1) AS one
            LEFT JOIN reservations r ON r.tenant_id = $1 AND r.pool_id = $2 AND r.start_at < $5 AND r.end_at > $4
                                    AND r.status IN ('Scheduled', 'Active')
            """, (NpgsqlConnection)db.Database.GetDbConnection())
        {
            Parameters =
            {
                new() { Value = tenantId }, new() { Value = poolId }, new() { Value = options.DefaultMaxConcurrentGpus },
                new() { Value = start }, new() { Value = end },
            },
        };
        var limit = options.DefaultMaxConcurrentGpus;
        var overlapping = new List<(DateTimeOffset StartAt, DateTimeOffset EndAt, int GpuCount, Guid Id)>();
        await using (var reader = await command.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                limit = reader.GetInt32(0);
                if (!reader.IsDBNull(1))
                {
                    overlapping.Add((reader.GetFieldValue<DateTimeOffset>(1), reader.GetFieldValue<DateTimeOffset>(2), reader.GetInt32(3),
                        reader.GetGuid(4)));
                }
            }
        }

        // Earlier requests of the same batch are not saved yet: their reservations, as the unit of work holds them,
        // replace what the database still says.
        var pending = db.ChangeTracker.Entries<Reservation>().Select(e => e.Entity)
            .Where(r => r.TenantId == tenantId && r.PoolId == poolId).ToList();
        var pendingIds = pending.Select(r => r.Id).ToHashSet();
        overlapping = overlapping.Where(r => !pendingIds.Contains(r.Id))
            .Concat(pending.Where(r => r.Status is ReservationStatus.Scheduled or ReservationStatus.Active && r.StartAt < end && r.EndAt > start)
                .Select(r => (r.StartAt, r.EndAt, r.GpuCount, r.Id)))
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
