using System.Security.Claims;
using FluentValidation;
using MetaCompute.Api.Auth;
using MetaCompute.Api.Data;
using MetaCompute.Api.Infrastructure;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace MetaCompute.Api.Billing;

public sealed record UsageQuery(DateTimeOffset? From, DateTimeOffset? To, string? GroupBy);

public sealed record UsageRow(string Key, decimal GpuSeconds, decimal GpuHours, decimal UsageCharges);

/// <summary>Metered use over <c>[from, to)</c>, by pool, reservation or day; hours from <c>meteredUntil</c> on are not metered yet.</summary>
public sealed record UsageResponse(DateTimeOffset From, DateTimeOffset To, string GroupBy, DateTimeOffset? MeteredUntil, IReadOnlyList<UsageRow> Rows,
    string Currency);

public sealed record RevenueQuery(DateTimeOffset? From, DateTimeOffset? To, string? PoolId);

public sealed record RevenueRow(string PoolId, DateOnly Day, decimal Charges, decimal Refunds, decimal Credits, decimal Net);

public sealed record RevenueResponse(DateTimeOffset From, DateTimeOffset To, IReadOnlyList<RevenueRow> Rows, string Currency);

public sealed class UsageQueryValidator : AbstractValidator<UsageQuery>
{
    public static readonly string[] Groupings = ["pool", "reservation", "day"];

    public UsageQueryValidator()
    {
        RuleFor(q => q.GroupBy).Must(g => g is null || Groupings.Contains(g)).WithMessage($"Use one of: {string.Join(", ", Groupings)}.");
        RuleFor(q => q.To).GreaterThan(q => q.From!.Value).When(q => q.From is not null && q.To is not null).WithMessage("to must be after from.");
        RuleFor(q => q).Must(q => q.From is null || q.To is null || q.To - q.From <= TimeSpan.FromDays(366)).OverridePropertyName("to")
            .WithMessage("Ask for at most a year at a time.");
    }
}

public sealed class RevenueQueryValidator : AbstractValidator<RevenueQuery>
{
    public RevenueQueryValidator()
    {
        RuleFor(q => q.To).GreaterThan(q => q.From!.Value).When(q => q.From is not null && q.To is not null).WithMessage("to must be after from.");
        RuleFor(q => q).Must(q => q.From is null || q.To is null || q.To - q.From <= TimeSpan.FromDays(366)).OverridePropertyName("to")
            .WithMessage("Ask for at most a year at a time.");
    }
}

public static class BillingEndpoints
{
    public static RouteGroupBuilder MapBillingEndpoints(this RouteGroupBuilder tenant)
    {
        tenant.MapGet("/usage", GetUsage).WithTags("Billing").WithName("getUsage")
            .WithSummary("Metered GPU-seconds and usage charges, by pool, reservation or day").ProducesValidationProblem();
        tenant.MapGet("/invoices", ListInvoices).WithTags("Billing").WithName("listInvoices")
            .WithSummary("The calling tenant's monthly invoices, open months first");
        tenant.MapGet("/invoices/{invoiceId}", GetInvoice).WithTags("Billing").WithName("getInvoice")
            .WithSummary("One invoice: a line per reservation, credits and the total").ProducesProblem(StatusCodes.Status404NotFound);
        return tenant;
    }

    public static RouteGroupBuilder MapRevenueEndpoints(this RouteGroupBuilder admin)
    {
        admin.MapGet("/revenue", GetRevenue).WithTags("Admin: billing").WithName("getRevenue")
            .WithSummary("Revenue per pool per day: charges, refunds, credits and net").ProducesValidationProblem();
        return admin;
    }

    public static async Task<Ok<UsageResponse>> GetUsage([AsParameters] UsageQuery query, ClaimsPrincipal user, MetaComputeDbContext db, TimeProvider time,
        CancellationToken ct)
    {
        var tenantId = user.TenantIdOf();
        var to = query.To ?? time.GetUtcNow();
        var from = query.From ?? to.AddDays(-30);
        var groupBy = query.GroupBy ?? "pool";
        var records = db.UsageRecords.AsNoTracking().Where(u => u.TenantId == tenantId && u.Hour >= from && u.Hour < to);
        var usage = await records.Select(u => new { u.ReservationId, u.PoolId, u.Hour, u.GpuSeconds }).ToListAsync(ct);
        var charged = await db.Charges.AsNoTracking()
            .Where(c => c.TenantId == tenantId && c.Kind == ChargeKind.Usage && c.Hour >= from && c.Hour < to)
            .Select(c => new { c.ReservationId, c.PoolId, Hour = c.Hour!.Value, c.Amount }).ToListAsync(ct);
        Func<Guid, string, DateTimeOffset, string> key = groupBy switch
        {
            "reservation" => (reservation, _, _) => reservation.ToString(),
            "day" => (_, _, hour) => hour.UtcDateTime.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture),
            _ => (_, pool, _) => pool,
        };
        var amounts = charged.GroupBy(c => key(c.ReservationId, c.PoolId, c.Hour)).ToDictionary(g => g.Key, g => g.Sum(c => c.Amount));
        var rows = usage.GroupBy(u => key(u.ReservationId, u.PoolId, u.Hour)).OrderBy(g => g.Key)
            .Select(g =>
            {
                var seconds = g.Sum(u => u.GpuSeconds);
                return new UsageRow(g.Key, seconds, decimal.Round(seconds / 3600m, 6, MidpointRounding.AwayFromZero), amounts.GetValueOrDefault(g.Key));
            })
            .ToList();
        var meteredUntil = await db.MeteringStates.Select(s => (DateTimeOffset?)s.MeteredUntil).FirstOrDefaultAsync(ct);
        return TypedResults.Ok(new UsageResponse(from, to, groupBy, meteredUntil, rows, Reservations.Pricing.Currency));
    }

    public static async Task<Ok<Page<InvoiceResponse>>> ListInvoices(ClaimsPrincipal user, MetaComputeDbContext db, CancellationToken ct) =>
        TypedResults.Ok(new Page<InvoiceResponse>(await Invoices.ListAsync(db, user.TenantIdOf(), ct), null));

    public static async Task<Results<Ok<InvoiceResponse>, ProblemHttpResult>> GetInvoice(Guid invoiceId, ClaimsPrincipal user, MetaComputeDbContext db,
        CancellationToken ct) =>
        await Invoices.FindAsync(db, user.TenantIdOf(), invoiceId, ct) is { } invoice
            ? TypedResults.Ok(invoice)
            : Problems.NotFound($"Invoice '{invoiceId}'");

    public static async Task<Ok<RevenueResponse>> GetRevenue([AsParameters] RevenueQuery query, MetaComputeDbContext db, TimeProvider time,
        CancellationToken ct)
    {
        var to = query.To ?? time.GetUtcNow();
        var from = query.From ?? to.AddDays(-30);
        var rows = await db.Database.SqlQuery<RevenueRow>($"""
            SELECT pool_id, (date_trunc('day', occurred_at, 'UTC'))::date AS day,
                   coalesce(sum(amount) FILTER (WHERE kind IN ('Reservation', 'Extension', 'Usage')), 0) AS charges,
                   coalesce(-sum(amount) FILTER (WHERE kind = 'Refund'), 0) AS refunds,
                   coalesce(-sum(amount) FILTER (WHERE kind = 'Credit'), 0) AS credits,
                   sum(amount) AS net
            FROM charges
            WHERE occurred_at >= {from} AND occurred_at < {to} AND ({query.PoolId}::text IS NULL OR pool_id = {query.PoolId})
            GROUP BY pool_id, day
            ORDER BY pool_id, day
            """).ToListAsync(ct);
        return TypedResults.Ok(new RevenueResponse(from, to, rows, Reservations.Pricing.Currency));
    }
}
