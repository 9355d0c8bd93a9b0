using MetaCompute.Api.Data;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace MetaCompute.Api.Scheduling;

/// <summary>
/// The rows a batch only appends, events and idempotency keys, taken out of its unit of work and written as one
/// multi-row INSERT each with the batch's allocation writes. EF would send a statement per row, and read back each
/// event's id, which nothing in a batch uses; a batch of 16 requests adds 32 such rows.
/// </summary>
public static class AppendOnlyRows
{
    /// <summary>Detaches the added events and key rows from <paramref name="db"/> and returns the commands that insert them.</summary>
    public static IEnumerable<NpgsqlBatchCommand> Take(MetaComputeDbContext db)
    {
        var events = Detach<Event>(db);
        if (events.Count > 0)
        {
            // WITH ORDINALITY and ORDER BY keep the identity order the order the events were appended in.
            yield return Command("""
                INSERT INTO events (tenant_id, reservation_id, type, occurred_at, data)
                SELECT t, r, y, o, d::jsonb FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::text[])
                    WITH ORDINALITY AS e(t, r, y, o, d, ord)
                ORDER BY ord
                """,
                events.Select(e => e.TenantId).ToArray(), events.Select(e => e.ReservationId).ToArray(), events.Select(e => e.Type).ToArray(),
                events.Select(e => e.OccurredAt).ToArray(), events.Select(e => e.Data.RootElement.GetRawText()).ToArray());
        }

        var keys = Detach<IdempotencyRecord>(db);
        if (keys.Count > 0)
        {
            yield return Command("""
                INSERT INTO idempotency_keys (tenant_id, key, request_hash, response_status, response_body, location, created_at)
                SELECT * FROM unnest($1::uuid[], $2::text[], $3::bytea[], $4::int[], $5::text[], $6::text[], $7::timestamptz[])
                """,
                keys.Select(k => k.TenantId).ToArray(), keys.Select(k => k.Key).ToArray(), keys.Select(k => k.RequestHash).ToArray(),
                keys.Select(k => k.ResponseStatus).ToArray(), keys.Select(k => k.ResponseBody).ToArray(), keys.Select(k => k.Location).ToArray(),
                keys.Select(k => k.CreatedAt).ToArray());
        }
    }

    private static List<T> Detach<T>(MetaComputeDbContext db) where T : class
    {
        var added = db.ChangeTracker.Entries<T>().Where(e => e.State == EntityState.Added).ToList();
        foreach (var entry in added)
        {
            entry.State = EntityState.Detached;
        }

        return added.Select(e => e.Entity).ToList();
    }

    private static NpgsqlBatchCommand Command(string sql, params object[] values)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var value in values)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = value });
        }

        return command;
    }
}
