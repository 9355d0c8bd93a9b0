using System.Collections.Concurrent;
using MetaCompute.Api.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace MetaCompute.Api.Catalog;

public sealed class CatalogOptions
{
    /// <summary>
    /// How long a booking trusts a pool's rules and prices without reading them again. An edit applies at once on the
    /// replica that made it and within this time on the others.
    /// </summary>
    public TimeSpan PoolCacheDuration { get; set; } = TimeSpan.FromSeconds(10);
}

/// <summary>
/// Pools as bookings read them, so a booking does not cost a query for a row that changes only by an operator's edit.
/// The cached rows are shared: callers read them and never change them.
/// </summary>
public sealed class PoolCache(TimeProvider time, IOptions<CatalogOptions> options)
{
    private readonly ConcurrentDictionary<string, (Pool Pool, DateTimeOffset Until)> _pools = new();

    /// <summary>The pool, or null if there is none with that id (an unknown id is asked again next time).</summary>
    public async Task<Pool?> GetAsync(MetaComputeDbContext db, string poolId, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        if (_pools.TryGetValue(poolId, out var entry) && entry.Until > now)
        {
            return entry.Pool;
        }

        var pool = await db.Pools.AsNoTracking().FirstOrDefaultAsync(p => p.Id == poolId, ct);
        if (pool is not null && options.Value.PoolCacheDuration > TimeSpan.Zero)
        {
            _pools[poolId] = (pool, now + options.Value.PoolCacheDuration);
        }

        return pool;
    }

    /// <summary>Forgets a pool at once (it was edited here).</summary>
    public void Forget(string poolId) => _pools.TryRemove(poolId, out _);
}
