using MetaCompute.Api.Data;
using MetaCompute.Api.Events;
using Microsoft.EntityFrameworkCore;

namespace MetaCompute.Api.Billing;

public sealed class BillingOptions
{
    /// <summary>The share of the price of GPU-hours a lease lost that comes back as a credit (1 = all of it).</summary>
    public decimal SlaCreditRate { get; set; } = 1m;

    /// <summary>How long after an hour ends it is metered, so changes committed at its very end are in.</summary>
    public TimeSpan MeteringDelay { get; set; } = TimeSpan.FromMinutes(1);
}

/// <summary>
/// Meters closed hours, oldest first, in the scheduler's tick: for each reservation, the GPU-seconds its allocations
/// cover in each hour (so moves, cancellations, extensions and recalls count exactly what was held); charges those of
/// per-second tiers (on-demand, spot, internal) at the reservation's price; credits the GPU-seconds a degraded lease
/// went without; and closes the invoices of months that are fully metered. Every row is keyed by reservation and hour,
/// and the watermark moves in the same transaction, so a tick that runs again changes nothing. Changes only ever
/// touch the present and the future, so a closed hour stays as metered.
/// </summary>
public static class MeteringTick
{
    /// <summary>At most this much history per tick, so a long pause is caught up in bounded steps.</summary>
    public static readonly TimeSpan MaxCatchUp = TimeSpan.FromDays(7);

    /// <summary>Hours metered, usage charges and credits written, months whose invoices were closed.</summary>
    public sealed record Result(int Hours, int UsageCharges, int Credits, int MonthsClosed);

    public static async Task<Result> RunAsync(MetaComputeDbContext db, BillingOptions options, DateTimeOffset now, CancellationToken ct)
    {
        var until = FloorHour(now - options.MeteringDelay);
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        // One metering run at a time, across processes: the state row is the lock.
        await db.Database.ExecuteSqlAsync($"INSERT INTO metering_states (id, metered_until) VALUES (1, {DateTimeOffset.UnixEpoch}) ON CONFLICT DO NOTHING", ct);
        var state = await db.MeteringStates.FromSql($"SELECT * FROM metering_states WHERE id = 1 FOR UPDATE").SingleAsync(ct);
        if (state.MeteredUntil == DateTimeOffset.UnixEpoch)
        {
            // Start from the first hour anything was held.
            var first = await db.Leases.MinAsync(l => (DateTimeOffset?)l.StartAt, ct);
            state.MeteredUntil = first is { } f && f < until ? FloorHour(f) : until;
        }

        var from = state.MeteredUntil;
        var to = until - from > MaxCatchUp ? from + MaxCatchUp : until;
        if (to <= from)
        {
            await db.SaveChangesAsync(ct);
            await tx.CommitAsync(ct);
            return new Result(0, 0, 0, 0);
        }

        var usage = await db.Database.ExecuteSqlAsync($"""
            WITH held AS (
                SELECT r.id AS reservation_id, r.tenant_id, r.pool_id, r.tier, r.price_per_gpu_hour, h.hour,
                       sum(extract(epoch FROM upper(a.period * tstzrange(h.hour, h.hour + interval '1 hour'))
                                            - lower(a.period * tstzrange(h.hour, h.hour + interval '1 hour'))))::numeric(18, 6) AS gpu_seconds
                FROM generate_series({from}::timestamptz, {to}::timestamptz - interval '1 hour', interval '1 hour') AS h(hour)
                JOIN leases l ON l.start_at < h.hour + interval '1 hour' AND l.end_at > h.hour
                JOIN reservations r ON r.id = l.reservation_id
                JOIN allocations a ON a.lease_id = l.id AND a.period && tstzrange(h.hour, h.hour + interval '1 hour')
                GROUP BY r.id, r.tenant_id, r.pool_id, r.tier, r.price_per_gpu_hour, h.hour),
            metered AS (
                INSERT INTO usage_records (reservation_id, hour, tenant_id, pool_id, gpu_seconds)
                SELECT reservation_id, hour, tenant_id, pool_id, gpu_seconds FROM held
                ON CONFLICT DO NOTHING
                RETURNING reservation_id, hour)
            INSERT INTO charges (tenant_id, reservation_id, pool_id, kind, hour, gpu_seconds, amount, occurred_at)
            SELECT h.tenant_id, h.reservation_id, h.pool_id, 'Usage', h.hour, h.gpu_seconds, round(h.price_per_gpu_hour * h.gpu_seconds / 3600, 6), h.hour
            FROM held h JOIN metered m USING (reservation_id, hour)
            WHERE h.tier <> 'Reserved'
            ON CONFLICT DO NOTHING
            """, ct);

        var credits = await db.Database.ExecuteSqlAsync($"""
            WITH lost AS (
                SELECT r.id AS reservation_id, r.tenant_id, r.pool_id, r.price_per_gpu_hour, h.hour,
                       sum(ls.gpu_count * extract(epoch FROM least(l.end_at, h.hour + interval '1 hour')
                                                            - greatest(ls.since, l.start_at, h.hour)))::numeric(18, 6) AS gpu_seconds
                FROM generate_series({from}::timestamptz, {to}::timestamptz - interval '1 hour', interval '1 hour') AS h(hour)
                JOIN lease_losses ls ON ls.since < h.hour + interval '1 hour'
                JOIN leases l ON l.id = ls.lease_id AND l.start_at < h.hour + interval '1 hour' AND l.end_at > h.hour
                               AND greatest(ls.since, l.start_at) < least(l.end_at, h.hour + interval '1 hour')
                JOIN reservations r ON r.id = l.reservation_id
                WHERE NOT (r.status = 'Cancelled' AND r.cancelled_at <= r.start_at)
                GROUP BY r.id, r.tenant_id, r.pool_id, r.price_per_gpu_hour, h.hour),
            credited AS (
                INSERT INTO charges (tenant_id, reservation_id, pool_id, kind, hour, gpu_seconds, amount, occurred_at)
                SELECT tenant_id, reservation_id, pool_id, 'Credit', hour, gpu_seconds,
                       -round(price_per_gpu_hour * gpu_seconds / 3600 * {options.SlaCreditRate}, 6), hour
                FROM lost WHERE gpu_seconds > 0
                ON CONFLICT DO NOTHING
                RETURNING tenant_id, reservation_id, hour, gpu_seconds, amount)
            INSERT INTO events (tenant_id, reservation_id, type, occurred_at, data)
            SELECT tenant_id, reservation_id, {EventTypes.CreditIssued}, hour + interval '1 hour',
                   jsonb_build_object('reason', 'degraded', 'hour', hour, 'gpuSeconds', gpu_seconds, 'amount', -amount)
            FROM credited ORDER BY hour, reservation_id
            """, ct);

        state.MeteredUntil = to;
        await db.SaveChangesAsync(ct);
        var closed = await CloseMonthsAsync(db, state, now, ct);
        await tx.CommitAsync(ct);
        return new Result((int)(to - from).TotalHours, usage, credits, closed);
    }

    /// <summary>
    /// Writes the invoices of every month that ended by the time metering has reached and has none yet: a line
    /// per reservation (its charges and refunds that month) and a line per reservation credited, from the ledger.
    /// </summary>
    private static async Task<int> CloseMonthsAsync(MetaComputeDbContext db, MeteringState state, DateTimeOffset now, CancellationToken ct)
    {
        if (state.InvoicedUntil is null)
        {
            var firstCharge = await db.Charges.MinAsync(c => (DateTimeOffset?)c.OccurredAt, ct);
            if (firstCharge is null)
            {
                return 0;
            }

            state.InvoicedUntil = Invoices.MonthOf(firstCharge.Value);
        }

        var closed = 0;
        for (var m = state.InvoicedUntil.Value; m.AddMonths(1) <= state.MeteredUntil; m = m.AddMonths(1))
        {
            closed += await db.Database.ExecuteSqlAsync($"""
                WITH lines AS (
                    SELECT tenant_id, reservation_id, pool_id, CASE WHEN kind = 'Credit' THEN 'credit' ELSE 'charges' END AS kind,
                           coalesce(sum(gpu_seconds), 0) AS lost_seconds, sum(amount) AS amount
                    FROM charges WHERE occurred_at >= {m} AND occurred_at < {m.AddMonths(1)}
                    GROUP BY 1, 2, 3, 4),
                merged AS (
                    -- A charges line shows the GPU-seconds the reservation held that month, whatever its tier; a credit
                    -- line the GPU-seconds it went without, as a positive amount.
                    SELECT tenant_id, reservation_id, pool_id, kind,
                           CASE WHEN kind = 'credit' THEN lost_seconds
                                ELSE (SELECT coalesce(sum(u.gpu_seconds), 0) FROM usage_records u
                                      WHERE u.reservation_id = lines.reservation_id AND u.hour >= {m} AND u.hour < {m.AddMonths(1)}) END AS gpu_seconds,
                           CASE WHEN kind = 'credit' THEN -amount ELSE amount END AS amount
                    FROM lines),
                created AS (
                    INSERT INTO invoices (id, tenant_id, month, charges, credits, total, closed_at)
                    SELECT md5(tenant_id::text || '/' || {Invoices.MonthKey(m)})::uuid, tenant_id, {m},
                           coalesce(sum(amount) FILTER (WHERE kind = 'charges'), 0), coalesce(sum(amount) FILTER (WHERE kind = 'credit'), 0),
                           coalesce(sum(amount) FILTER (WHERE kind = 'charges'), 0) - coalesce(sum(amount) FILTER (WHERE kind = 'credit'), 0), {now}
                    FROM merged GROUP BY tenant_id
                    ON CONFLICT (tenant_id, month) DO NOTHING
                    RETURNING id, tenant_id)
                INSERT INTO invoice_lines (invoice_id, reservation_id, pool_id, kind, gpu_seconds, amount)
                SELECT c.id, l.reservation_id, l.pool_id, l.kind, l.gpu_seconds, l.amount
                FROM merged l JOIN created c USING (tenant_id)
                """, ct) > 0 ? 1 : 0;
            state.InvoicedUntil = m.AddMonths(1);
        }

        await db.SaveChangesAsync(ct);
        return closed;
    }

    public static DateTimeOffset FloorHour(DateTimeOffset t) => new(t.UtcTicks - t.UtcTicks % TimeSpan.TicksPerHour, TimeSpan.Zero);
}
