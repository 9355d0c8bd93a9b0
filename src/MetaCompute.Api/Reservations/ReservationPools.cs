using Microsoft.Extensions.Caching.Memory;

namespace MetaCompute.Api.Reservations;

/// <summary>
/// Which tenant and pool each reservation belongs to, remembered from its booking on this replica: neither ever
/// changes, and a cancellation or extension must know the pool before it can join the pool's decider. Bounded; a
/// reservation not remembered is looked up in the database.
/// </summary>
public sealed class ReservationPools : IDisposable
{
    public const int Capacity = 100_000;

    private readonly MemoryCache _owners = new(new MemoryCacheOptions { SizeLimit = Capacity });

    public void Remember(Guid reservationId, Guid tenantId, string poolId) =>
        _owners.Set(reservationId, (tenantId, poolId), new MemoryCacheEntryOptions { Size = 1, SlidingExpiration = TimeSpan.FromHours(1) });

    /// <summary>The pool of the tenant's own reservation if remembered; another tenant's reservation is not found.</summary>
    public bool TryGetPool(Guid tenantId, Guid reservationId, out string? poolId)
    {
        poolId = null;
        if (!_owners.TryGetValue(reservationId, out (Guid TenantId, string PoolId) owner))
        {
            return false;
        }

        poolId = owner.TenantId == tenantId ? owner.PoolId : null;
        return true;
    }

    public void Dispose() => _owners.Dispose();
}
