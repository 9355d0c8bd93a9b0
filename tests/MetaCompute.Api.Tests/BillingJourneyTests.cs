using System.Net;
using System.Net.Http.Json;
using MetaCompute.Api.Billing;
using MetaCompute.Api.Data;
using MetaCompute.Api.Infrastructure;
using MetaCompute.Api.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace MetaCompute.Api.Tests;

/// <summary>
/// The tenant's bill for the small journey README.md shows: reserved blocks (one cancelled in time, one late), an
/// on-demand hour, and a reserved block whose node failed with no spare. The class's database is its own.
/// </summary>
public sealed class BillingJourneyTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private static DateTimeOffset HourAhead(int hours)
    {
        var t = DateTimeOffset.UtcNow.AddHours(hours);
        return new DateTimeOffset(t.Year, t.Month, t.Day, t.Hour, 0, 0, TimeSpan.Zero);
    }

    private static async Task<Reservations.ReservationResponse> ReserveAsync(HttpClient client, string poolId, int gpus, DateTimeOffset? start, int hours,
        string tier) =>
        await (await client.ReserveAsync(new { poolId, gpuCount = gpus, startAt = start, durationHours = hours, tier })).ReadReservationAsync();

    [Fact]
    public async Task A_small_journey_bills_reserved_blocks_refunds_metered_use_and_credits_and_closes_into_an_immutable_invoice()
    {
        const string h100 = "us-ohio-1-h100", b200 = "eu-dublin-1-b200";
        var client = await api.ClientWithoutQuotaLimitAsync(TenantKind.External, h100, b200);

        var block = await ReserveAsync(client, h100, 8, HourAhead(24), 4, "reserved");                 // 8 × 4 h × 1.992 = 63.744
        var early = await ReserveAsync(client, h100, 16, HourAhead(24 * 10), 24, "reserved");          // 16 × 24 h × 1.8924 = 726.6816
        (await client.PostIdempotentAsync($"/v1/reservations/{early.Id}/cancel", null)).EnsureSuccessStatusCode();  // 10 days ahead: all back
        var late = await ReserveAsync(client, h100, 8, HourAhead(48), 2, "reserved");                  // 8 × 2 h × 1.992 = 31.872
        (await client.PostIdempotentAsync($"/v1/reservations/{late.Id}/cancel", null)).EnsureSuccessStatusCode();   // 2 days ahead: half back
        var hour = await ReserveAsync(client, h100, 8, null, 1, "on_demand");                          // 8 × 1 h × 2.49 = 19.92, metered

        // A B200 block whose node fails before it starts, in a window sold out to others: nowhere to move, so degraded.
        var start = HourAhead(24);
        var others = await api.ClientWithoutQuotaLimitAsync(TenantKind.External, b200);
        var firstParty = await api.ClientWithoutQuotaLimitAsync(TenantKind.Internal, b200);
        var failing = await ReserveAsync(client, b200, 8, start, 4, "reserved");                       // 8 × 4 h × 3.992 = 127.744
        var pool = await client.PoolAsync(b200);
        for (var left = pool.Sellable() - 8; left > 0; left -= 64)
        {
            await ReserveAsync(others, b200, Math.Min(64, left), start, 4, "reserved");
        }

        await ReserveAsync(firstParty, b200, pool.Rules.HoldbackGpus, start, 4, "internal");
        using var operatorClient = api.OperatorClient();
        (await operatorClient.PostAsync($"/v1/admin/nodes/{failing.Lease!.Nodes.Single().NodeId}/fail", null)).EnsureSuccessStatusCode();

        // Meter every hour of the journey; then on, until the month it falls in is done (a week per tick at most).
        async Task MeterUntilAsync(DateTimeOffset now)
        {
            await using var scope = api.Services.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<MetaComputeDbContext>();
            while ((await MeteringTick.RunAsync(db, new BillingOptions(), now, CancellationToken.None)).Hours > 0)
            {
            }
        }

        await MeterUntilAsync(start.AddHours(5));
        var drafts = (await client.GetFromJsonAsync<Page<InvoiceResponse>>("/v1/invoices", Json.Options))!.Items.Where(i => i.Status == Invoices.Open).ToList();
        var later = Invoices.MonthOf(start.AddDays(1)).AddMonths(1).AddHours(1);
        await MeterUntilAsync(later);

        var invoices = (await client.GetFromJsonAsync<Page<InvoiceResponse>>("/v1/invoices", Json.Options))!.Items;
        Assert.NotEmpty(invoices);
        Assert.All(invoices, i => Assert.Equal(Invoices.Closed, i.Status));
        Assert.All(invoices, i => Assert.Equal(i.Lines.Sum(l => l.Amount) - i.Credits.Sum(c => c.Amount), i.Total));
        Assert.All(invoices, i => Assert.Equal((i.Lines.Sum(l => l.Amount), i.Credits.Sum(c => c.Amount)), (i.Charges, i.CreditTotal)));

        // An open month's invoice already reads as it will once closed: same id, same lines.
        Assert.NotEmpty(drafts);
        foreach (var draft in drafts)
        {
            var closed = invoices.Single(i => i.Id == draft.Id);
            Assert.Equal(draft.Lines, closed.Lines);
            Assert.Equal(draft.Credits, closed.Credits);
            Assert.Equal(draft.Total, closed.Total);
        }

        decimal Charged(string reservationId) => invoices.SelectMany(i => i.Lines).Where(l => l.ReservationId == reservationId).Sum(l => l.Amount);
        decimal Credited(string reservationId) => invoices.SelectMany(i => i.Credits).Where(l => l.ReservationId == reservationId).Sum(l => l.Amount);
        Assert.Equal(63.744m, Charged(block.Id));
        Assert.Equal(0m, Charged(early.Id));
        Assert.Equal(15.936m, Charged(late.Id));
        Assert.InRange(Charged(hour.Id), 19.919999m, 19.920001m);
        Assert.Equal(127.744m, Charged(failing.Id));
        Assert.Equal(127.744m, Credited(failing.Id));
        Assert.InRange(invoices.Sum(i => i.Total), 99.599999m, 99.600001m);

        // Closed means closed: another tick writes nothing, and the invoice reads the same.
        var first = invoices[0];
        await using (var scope = api.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<MetaComputeDbContext>();
            await MeteringTick.RunAsync(db, new BillingOptions(), later.AddDays(1), CancellationToken.None);
        }

        var again = (await client.GetFromJsonAsync<InvoiceResponse>($"/v1/invoices/{first.Id}", Json.Options))!;
        Assert.Equal((first.Total, first.Lines.Count, first.Credits.Count, first.ClosedAt), (again.Total, again.Lines.Count, again.Credits.Count, again.ClosedAt));

        // Another tenant's invoice is not found.
        using var stranger = api.ClientWithKey((await api.CreateTenantAsync()).ApiKey);
        await (await stranger.GetAsync($"/v1/invoices/{first.Id}")).AssertProblemAsync(HttpStatusCode.NotFound, Problems.NotFoundType);

        // Usage by reservation: the on-demand hour held 8 GPUs for exactly an hour.
        var usage = (await client.GetFromJsonAsync<UsageResponse>(
            $"/v1/usage?groupBy=reservation&from={Uri.EscapeDataString(hour.StartAt.AddHours(-1).ToString("O"))}&to={Uri.EscapeDataString(later.ToString("O"))}",
            Json.Options))!;
        Assert.Equal(8 * 3600m, usage.Rows.Single(r => r.Key == hour.Id).GpuSeconds);

        // Operators see the same money per pool per day: the ledger's net.
        var revenue = (await operatorClient.GetFromJsonAsync<RevenueResponse>(
            $"/v1/admin/revenue?from={Uri.EscapeDataString(DateTimeOffset.UtcNow.AddDays(-1).ToString("O"))}&to={Uri.EscapeDataString(later.AddDays(2).ToString("O"))}",
            Json.Options))!;
        Assert.Equal(await api.ScalarAsync<decimal>("SELECT sum(amount) FROM charges"), revenue.Rows.Sum(r => r.Net));
        Assert.Equal(revenue.Rows.Sum(r => r.Charges - r.Refunds - r.Credits), revenue.Rows.Sum(r => r.Net));
    }

    [Theory]
    [InlineData("/v1/usage?groupBy=tenant", "groupBy")]
    [InlineData("/v1/usage?from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z", "to")]
    [InlineData("/v1/usage?from=2025-01-01T00:00:00Z&to=2026-12-01T00:00:00Z", "to")]
    public async Task Usage_queries_out_of_shape_are_refused_naming_the_field(string path, string field)
    {
        using var client = api.ClientWithKey((await api.CreateTenantAsync()).ApiKey);
        var problem = await (await client.GetAsync(path)).AssertProblemAsync(HttpStatusCode.BadRequest, Problems.ValidationFailedType);
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), problem.ToString());
    }

    [Fact]
    public async Task Revenue_is_for_operators_only()
    {
        using var client = api.ClientWithKey((await api.CreateTenantAsync()).ApiKey);
        Assert.Equal(HttpStatusCode.Forbidden, (await client.GetAsync("/v1/admin/revenue")).StatusCode);
    }
}
