using MetaCompute.Api.Data;

namespace MetaCompute.Api.Billing;

/// <summary>Appends charges to the unit of work, so they commit with the change that causes them.</summary>
public static class Ledger
{
    public static void Charge(MetaComputeDbContext db, Reservation reservation, ChargeKind kind, decimal amount, DateTimeOffset now)
    {
        if (amount == 0)
        {
            return;
        }

        db.Charges.Add(new Charge
        {
            TenantId = reservation.TenantId,
            ReservationId = reservation.Id,
            PoolId = reservation.PoolId,
            Kind = kind,
            Amount = amount,
            OccurredAt = now,
        });
    }
}
