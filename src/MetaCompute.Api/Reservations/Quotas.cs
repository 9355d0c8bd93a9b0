using MetaCompute.Api.Data;
using Microsoft.EntityFrameworkCore;

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
        var limit = await db.TenantQuotas.Where(q => q.TenantId == tenantId && q.PoolId == poolId)
            .Select(q => (int?)q.MaxConcurrentGpus).FirstOrDefaultAsync(ct) ?? options.DefaultMaxConcurrentGpus;
        var overlapping = await db.Reservations.AsNoTracking()
            .Where(r => r.TenantId == tenantId && r.PoolId == poolId && r.StartAt < end && r.EndAt > start
                        && (r.Status == ReservationStatus.Scheduled || r.Status == ReservationStatus.Active))
            .Select(r => new { r.StartAt, r.EndAt, r.GpuCount })
            .ToListAsync(ct);

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
