using System.Security.Cryptography;
using System.Text;
using MetaCompute.Api.Data;
using MetaCompute.Api.Reservations;
using Microsoft.EntityFrameworkCore;

namespace MetaCompute.Api.Billing;

public sealed record InvoiceLineResponse(string ReservationId, string PoolId, decimal GpuSeconds, decimal Amount);

/// <summary>
/// A tenant's month: a line per reservation (its charges and refunds that month), a line per reservation credited,
/// and <c>total = charges − credits</c>. <c>open</c> while the month runs or is being metered; <c>closed</c> once written,
/// and never changed after.
/// </summary>
public sealed record InvoiceResponse(
    string Id,
    string Month,
    string Status,
    IReadOnlyList<InvoiceLineResponse> Lines,
    IReadOnlyList<InvoiceLineResponse> Credits,
    decimal Charges,
    decimal CreditTotal,
    decimal Total,
    string Currency,
    DateTimeOffset? ClosedAt);

public static class Invoices
{
    public const string Open = "open";
    public const string Closed = "closed";

    public static DateTimeOffset MonthOf(DateTimeOffset t)
    {
        var utc = t.ToUniversalTime();
        return new DateTimeOffset(utc.Year, utc.Month, 1, 0, 0, 0, TimeSpan.Zero);
    }

    public static string MonthKey(DateTimeOffset month) => month.ToString("yyyy-MM", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// An invoice's id is derived from its tenant and month (the same digest the database computes when it closes the
    /// month), so an open month has its final id already. It is looked up only among the caller's own invoices.
    /// </summary>
    public static Guid IdOf(Guid tenantId, DateTimeOffset month) =>
        Guid.ParseExact(Convert.ToHexStringLower(MD5.HashData(Encoding.UTF8.GetBytes($"{tenantId}/{MonthKey(month)}"))), "N");

    /// <summary>The caller's invoices, newest first: the open months computed from the ledger, then the closed ones as written.</summary>
    public static async Task<List<InvoiceResponse>> ListAsync(MetaComputeDbContext db, Guid tenantId, CancellationToken ct)
    {
        var invoices = new List<InvoiceResponse>();
        foreach (var month in await OpenMonthsAsync(db, tenantId, ct))
        {
            invoices.Add(await DraftAsync(db, tenantId, month, ct));
        }

        var closed = await db.Invoices.AsNoTracking().Include(i => i.Lines).Where(i => i.TenantId == tenantId).OrderByDescending(i => i.Month)
            .ToListAsync(ct);
        invoices.AddRange(closed.Select(ToResponse));
        return invoices;
    }

    public static async Task<InvoiceResponse?> FindAsync(MetaComputeDbContext db, Guid tenantId, Guid invoiceId, CancellationToken ct)
    {
        var closed = await db.Invoices.AsNoTracking().Include(i => i.Lines).FirstOrDefaultAsync(i => i.Id == invoiceId && i.TenantId == tenantId, ct);
        if (closed is not null)
        {
            return ToResponse(closed);
        }

        foreach (var month in await OpenMonthsAsync(db, tenantId, ct))
        {
            if (IdOf(tenantId, month) == invoiceId)
            {
                return await DraftAsync(db, tenantId, month, ct);
            }
        }

        return null;
    }

    /// <summary>Months with charges for the tenant that have no written invoice yet, newest first.</summary>
    private static async Task<List<DateTimeOffset>> OpenMonthsAsync(MetaComputeDbContext db, Guid tenantId, CancellationToken ct)
    {
        var invoicedUntil = await db.MeteringStates.Select(s => s.InvoicedUntil).FirstOrDefaultAsync(ct) ?? DateTimeOffset.UnixEpoch;
        var months = await db.Database.SqlQuery<DateTime>($"""
            SELECT DISTINCT date_trunc('month', occurred_at, 'UTC') AS "Value" FROM charges
            WHERE tenant_id = {tenantId} AND occurred_at >= {invoicedUntil}
            """).ToListAsync(ct);
        return months.Select(m => new DateTimeOffset(DateTime.SpecifyKind(m, DateTimeKind.Utc))).OrderDescending().ToList();
    }

    /// <summary>The month's invoice as it stands: the same grouping the close writes.</summary>
    private static async Task<InvoiceResponse> DraftAsync(MetaComputeDbContext db, Guid tenantId, DateTimeOffset month, CancellationToken ct)
    {
        var end = month.AddMonths(1);
        var charges = await db.Charges.AsNoTracking().Where(c => c.TenantId == tenantId && c.OccurredAt >= month && c.OccurredAt < end).ToListAsync(ct);
        var held = await db.UsageRecords.AsNoTracking().Where(u => u.TenantId == tenantId && u.Hour >= month && u.Hour < end)
            .GroupBy(u => u.ReservationId).Select(g => new { g.Key, Seconds = g.Sum(u => u.GpuSeconds) }).ToDictionaryAsync(x => x.Key, x => x.Seconds, ct);
        var lines = charges
            .GroupBy(c => (c.ReservationId, c.PoolId, Credit: c.Kind == ChargeKind.Credit))
            .Select(g => new InvoiceLine
            {
                ReservationId = g.Key.ReservationId,
                PoolId = g.Key.PoolId,
                Kind = g.Key.Credit ? "credit" : "charges",
                GpuSeconds = g.Key.Credit ? g.Sum(c => c.GpuSeconds ?? 0) : held.GetValueOrDefault(g.Key.ReservationId),
                Amount = g.Key.Credit ? -g.Sum(c => c.Amount) : g.Sum(c => c.Amount),
            })
            .ToList();
        var chargesTotal = lines.Where(l => l.Kind == "charges").Sum(l => l.Amount);
        var credits = lines.Where(l => l.Kind == "credit").Sum(l => l.Amount);
        return ToResponse(new Invoice
        {
            Id = IdOf(tenantId, month), TenantId = tenantId, Month = month, Charges = chargesTotal, Credits = credits, Total = chargesTotal - credits,
            Lines = lines,
        }, Open);
    }

    private static InvoiceResponse ToResponse(Invoice invoice) => ToResponse(invoice, Closed);

    private static InvoiceResponse ToResponse(Invoice invoice, string status)
    {
        static InvoiceLineResponse Line(InvoiceLine l) => new(l.ReservationId.ToString(), l.PoolId, l.GpuSeconds, l.Amount);
        var ordered = invoice.Lines.OrderBy(l => l.ReservationId).ToList();
        return new InvoiceResponse(invoice.Id.ToString(), MonthKey(invoice.Month), status,
            ordered.Where(l => l.Kind == "charges").Select(Line).ToList(), ordered.Where(l => l.Kind == "credit").Select(Line).ToList(),
            invoice.Charges, invoice.Credits, invoice.Total, Pricing.Currency, status == Closed ? invoice.ClosedAt : null);
    }
}
