using MetaCompute.Api.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using Npgsql;

namespace MetaCompute.Api.Scheduling;

/// <summary>
/// Writes a batch's unit of work as a few multi-row statements that travel with its allocation writes and its COMMIT,
/// instead of EF's save: one statement per row and a round trip of its own under the pool's lock. Bookings,
/// cancellations and extensions change only reservations, leases, events and key rows; a batch that changed anything
/// else (a refund's charge, a recall) or deleted a row is saved by EF as before, and only its events and key rows are
/// taken here.
/// A test checks that the statements name every column EF maps.
/// </summary>
public static class BatchRows
{
    /// <summary>The reservation columns a change may touch; the rest are fixed at creation.</summary>
    internal static readonly string[] ReservationMutableColumns =
        ["status", "start_at", "end_at", "total_price", "updated_at", "cancelled_at", "ending_soon_notified_at", "wait_until", "recall_at"];

    internal static readonly string[] ReservationColumns =
        ["id", "tenant_id", "pool_id", "tier", "gpu_count", "single_fabric_island", "price_per_gpu_hour", "currency", "created_at", .. ReservationMutableColumns];

    internal static readonly string[] LeaseColumns = ["id", "reservation_id", "pool_id", "start_at", "end_at", "created_at", "degraded_since"];

    internal static readonly string[] EventColumns = ["tenant_id", "reservation_id", "type", "occurred_at", "data"];

    internal static readonly string[] KeyColumns = ["tenant_id", "key", "request_hash", "response_status", "response_body", "location", "created_at"];

    /// <summary>
    /// Takes the pending rows out of <paramref name="db"/> (detached, so EF will not write them again): the commands
    /// that must run before the batch's allocation writes (reservations and leases, which those refer to) and after them
    /// (events and key rows). Reservations and leases stay with EF when anything else is pending.
    /// </summary>
    public static (List<NpgsqlBatchCommand> Before, List<NpgsqlBatchCommand> After) Take(MetaComputeDbContext db)
    {
        var after = new List<NpgsqlBatchCommand>();
        var taken = new List<EntityEntry>();
        var events = Pending<Event>(db, EntityState.Added, taken);
        if (events.Count > 0)
        {
            // Ordering by the rows' index keeps the identity order the order the events were appended in.
            after.Add(AllocationWriter.Command($"""
                INSERT INTO events ({string.Join(", ", EventColumns)})
                SELECT t, r, y, o, d::jsonb FROM {AllocationWriter.ParameterRows("uuid", "uuid", "text", "timestamptz", "text")} AS e(t, r, y, o, d, ord)
                ORDER BY ord
                """,
                events.Select(e => e.TenantId).ToArray(), events.Select(e => e.ReservationId).ToArray(), events.Select(e => e.Type).ToArray(),
                events.Select(e => e.OccurredAt).ToArray(), events.Select(e => e.Data.RootElement.GetRawText()).ToArray()));
        }

        var keys = Pending<IdempotencyRecord>(db, EntityState.Added, taken);
        if (keys.Count > 0)
        {
            after.Add(AllocationWriter.Command($"""
                INSERT INTO idempotency_keys ({string.Join(", ", KeyColumns)})
                SELECT {string.Join(", ", KeyColumns)}
                FROM {AllocationWriter.ParameterRows("uuid", "text", "bytea", "int", "text", "text", "timestamptz")} AS k({string.Join(", ", KeyColumns)})
                """,
                keys.Select(k => k.TenantId).ToArray(), keys.Select(k => k.Key).ToArray(), keys.Select(k => k.RequestHash).ToArray(),
                keys.Select(k => k.ResponseStatus).ToArray(), keys.Select(k => k.ResponseBody).ToArray(), keys.Select(k => k.Location).ToArray(),
                keys.Select(k => k.CreatedAt).ToArray()));
        }

        var before = new List<NpgsqlBatchCommand>();
        // A deletion, or a change to any other kind of row, leaves the reservations and leases to EF, which orders the
        // whole save by its foreign keys.
        if (db.ChangeTracker.Entries().Any(e => e.State == EntityState.Deleted
                                                || e.State is EntityState.Added or EntityState.Modified
                                                && e.Entity is not (Reservation or Lease or Event or IdempotencyRecord)))
        {
            Detach(taken);
            return (before, after);
        }

        if (Pending<Reservation>(db, EntityState.Added, taken) is { Count: > 0 } added)
        {
            before.Add(AllocationWriter.Command($"""
                INSERT INTO reservations ({string.Join(", ", ReservationColumns)})
                SELECT {string.Join(", ", ReservationColumns)}
                FROM {AllocationWriter.ParameterRows("uuid", "uuid", "text", "text", "int", "boolean", "numeric", "text",
                    "timestamptz", "text", "timestamptz", "timestamptz", "numeric", "timestamptz", "timestamptz",
                    "timestamptz", "timestamptz", "timestamptz")} AS r({string.Join(", ", ReservationColumns)})
                """,
                [
                    added.Select(r => r.Id).ToArray(), added.Select(r => r.TenantId).ToArray(), added.Select(r => r.PoolId).ToArray(),
                    added.Select(r => r.Tier.ToString()).ToArray(), added.Select(r => r.GpuCount).ToArray(),
                    added.Select(r => r.SingleFabricIsland).ToArray(), added.Select(r => r.PricePerGpuHour).ToArray(),
                    added.Select(r => r.Currency).ToArray(), added.Select(r => r.CreatedAt).ToArray(), .. MutableValues(added),
                ]));
        }

        if (Pending<Lease>(db, EntityState.Added, taken) is { Count: > 0 } leases)
        {
            before.Add(AllocationWriter.Command($"""
                INSERT INTO leases ({string.Join(", ", LeaseColumns)})
                SELECT {string.Join(", ", LeaseColumns)}
                FROM {AllocationWriter.ParameterRows("uuid", "uuid", "text", "timestamptz", "timestamptz", "timestamptz", "timestamptz")} AS l({string.Join(", ", LeaseColumns)})
                """,
                leases.Select(l => l.Id).ToArray(), leases.Select(l => l.ReservationId).ToArray(), leases.Select(l => l.PoolId).ToArray(),
                leases.Select(l => l.StartAt).ToArray(), leases.Select(l => l.EndAt).ToArray(), leases.Select(l => l.CreatedAt).ToArray(),
                leases.Select(l => l.DegradedSince).ToArray()));
        }

        if (Pending<Reservation>(db, EntityState.Modified, taken) is { Count: > 0 } changed)
        {
            // The row version (xmin) EF would check: a reservation changed since it was read fails the whole batch as a
            // serialization failure, which the decider retries, request by request, on fresh reads. id = ANY($1) lets
            // the planner find the rows by primary key; joined to the parameter rows alone it sometimes scanned the table
            // (1.3-1.5 ms a batch instead of 0.3).
            var set = string.Join(", ", ReservationMutableColumns.Select(c => $"{c} = v.{c}"));
            before.Add(AllocationWriter.Command($"""
                WITH v AS (
                    SELECT * FROM {AllocationWriter.ParameterRows("uuid", "bigint", "text", "timestamptz", "timestamptz", "numeric",
                        "timestamptz", "timestamptz", "timestamptz", "timestamptz", "timestamptz")}
                        AS v(id, version, {string.Join(", ", ReservationMutableColumns)})),
                changed AS (
                    UPDATE reservations r SET {set} FROM v
                    WHERE r.id = ANY($1) AND r.id = v.id AND r.xmin::text::bigint = v.version RETURNING 1)
                SELECT assert_row_count((SELECT count(*) FROM changed), $12, 'reservations')
                """,
                [changed.Select(r => r.Id).ToArray(), changed.Select(r => (long)r.Version).ToArray(), .. MutableValues(changed), changed.Count]));
        }

        if (Pending<Lease>(db, EntityState.Modified, taken) is { Count: > 0 } moved)
        {
            before.Add(AllocationWriter.Command($"""
                UPDATE leases l SET start_at = v.start_at, end_at = v.end_at, degraded_since = v.degraded_since
                FROM {AllocationWriter.ParameterRows("uuid", "timestamptz", "timestamptz", "timestamptz")} AS v(id, start_at, end_at, degraded_since)
                WHERE l.id = ANY($1) AND l.id = v.id
                """,
                moved.Select(l => l.Id).ToArray(), moved.Select(l => l.StartAt).ToArray(), moved.Select(l => l.EndAt).ToArray(),
                moved.Select(l => l.DegradedSince).ToArray()));
        }

        Detach(taken);
        return (before, after);
    }

    private static object[] MutableValues(List<Reservation> rows) =>
    [
        rows.Select(r => r.Status.ToString()).ToArray(), rows.Select(r => r.StartAt).ToArray(), rows.Select(r => r.EndAt).ToArray(),
        rows.Select(r => r.TotalPrice).ToArray(), rows.Select(r => r.UpdatedAt).ToArray(), rows.Select(r => r.CancelledAt).ToArray(),
        rows.Select(r => r.EndingSoonNotifiedAt).ToArray(), rows.Select(r => r.WaitUntil).ToArray(), rows.Select(r => r.RecallAt).ToArray(),
    ];

    private static List<T> Pending<T>(MetaComputeDbContext db, EntityState state, List<EntityEntry> taken) where T : class
    {
        var entries = db.ChangeTracker.Entries<T>().Where(e => e.State == state).ToList();
        taken.AddRange(entries);
        return entries.Select(e => e.Entity).ToList();
    }

    /// <summary>Detached only once every kind is read: detaching an added reservation would detach its added lease with it.</summary>
    private static void Detach(List<EntityEntry> taken)
    {
        foreach (var entry in taken)
        {
            entry.State = EntityState.Detached;
        }
    }
}
