using System.Net;
using System.Net.Http.Json;
using MetaCompute.Api.Admin;
using MetaCompute.Api.Catalog;
using MetaCompute.Api.Data;
using MetaCompute.Api.Infrastructure;
using MetaCompute.Api.Tests.Infrastructure;

namespace MetaCompute.Api.Tests;

/// <summary>Owns the H200 pool of its database: operators' edits of rules, holdback and prices.</summary>
public sealed class PoolAdminTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private const string Pool = "us-ohio-1-h200";

    private static HttpRequestMessage Put(PoolResponse pool, string? etag, Func<PoolRulesResponse, PoolRulesResponse>? rules = null, decimal? onDemand = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Put, $"/v1/admin/pools/{pool.Id}")
        {
            Content = JsonContent.Create(new UpdatePoolRequest((rules ?? (r => r))(pool.Rules),
                new PoolPricesUpdate(onDemand ?? pool.Prices.OnDemand, pool.Prices.Reserved, pool.Prices.Spot, pool.Prices.Internal)), options: Json.Options),
        };
        if (etag is not null)
        {
            request.Headers.TryAddWithoutValidation("If-Match", etag);
        }

        return request;
    }

    [Fact]
    public async Task An_edit_with_the_current_etag_applies_and_a_stale_one_is_412()
    {
        using var client = api.OperatorClient();
        var read = await client.GetAsync($"/v1/pools/{Pool}");
        var etag = read.Headers.ETag!.Tag;
        var pool = (await read.Content.ReadFromJsonAsync<PoolResponse>(Json.Options))!;

        var updated = await client.SendAsync(Put(pool, etag, onDemand: 3.5m));
        Assert.Equal(HttpStatusCode.OK, updated.StatusCode);
        Assert.Equal(3.5m, (await updated.Content.ReadFromJsonAsync<PoolResponse>(Json.Options))!.Prices.OnDemand);
        Assert.NotEqual(etag, updated.Headers.ETag!.Tag);

        var stale = await client.SendAsync(Put(pool, etag, onDemand: 9m));
        await stale.AssertProblemAsync(HttpStatusCode.PreconditionFailed, Problems.PreconditionFailedType);
        Assert.Equal(3.5m, await api.ScalarAsync<decimal>("SELECT prices_on_demand FROM pools WHERE id = $1", Pool));
        const string audited = "SELECT count(*) FROM events WHERE type = 'pool.updated' AND (data->'after'->'prices'->>'onDemand')::numeric = $1";
        Assert.Equal(1L, await api.ScalarAsync<long>(audited, 3.5m));
        Assert.Equal(0L, await api.ScalarAsync<long>(audited, 9m));
    }

    [Fact]
    public async Task An_edit_without_if_match_is_428_and_bad_rules_are_400_per_field()
    {
        using var client = api.OperatorClient();
        var pool = (await client.GetFromJsonAsync<PoolResponse>($"/v1/pools/{Pool}", Json.Options))!;
        await (await client.SendAsync(Put(pool, null))).AssertProblemAsync(HttpStatusCode.PreconditionRequired, PoolAdminEndpoints.PreconditionRequiredType);

        var bad = await client.SendAsync(Put(pool, "\"1\"", r => r with { MinGpus = 0, HoldbackGpus = -8 }));
        var problem = await bad.AssertProblemAsync(HttpStatusCode.BadRequest, Problems.ValidationFailedType);
        Assert.True(problem.GetProperty("errors").TryGetProperty("rules.minGpus", out _));
        Assert.True(problem.GetProperty("errors").TryGetProperty("rules.holdbackGpus", out _));

        var tenant = await api.CreateTenantAsync();
        using var tenantClient = api.ClientWithKey(tenant.ApiKey);
        await (await tenantClient.SendAsync(Put(pool, "\"1\""))).AssertProblemAsync(HttpStatusCode.Forbidden, Problems.ForbiddenType);
    }

    [Fact]
    public async Task A_new_holdback_applies_to_the_next_booking_and_sold_prices_stay()
    {
        var tenant = await api.CreateTenantAsync();
        using var client = api.ClientWithKey(tenant.ApiKey);
        using var operatorClient = api.OperatorClient();
        var sold = await (await client.ReserveAsync(new { poolId = Pool, gpuCount = 8, durationHours = 1 })).ReadReservationAsync();

        var read = await operatorClient.GetAsync($"/v1/pools/{Pool}");
        var pool = (await read.Content.ReadFromJsonAsync<PoolResponse>(Json.Options))!;
        // Hold back every healthy GPU: nothing is left for tenants outside the internal tier.
        (await operatorClient.SendAsync(Put(pool, read.Headers.ETag!.Tag, r => r with { HoldbackGpus = pool.HealthyGpus }, onDemand: 99m)))
            .EnsureSuccessStatusCode();

        var refused = await client.ReserveAsync(new { poolId = Pool, gpuCount = 8, durationHours = 1 });
        await refused.AssertProblemAsync(HttpStatusCode.Conflict, Reservations.ReservationEndpoints.InsufficientCapacityType);
        var kept = await (await client.GetAsync($"/v1/reservations/{sold.Id}")).ReadReservationAsync();
        Assert.Equal(sold.Price, kept.Price);
        Assert.Equal(ReservationStatus.Scheduled, kept.Status);
    }
}
