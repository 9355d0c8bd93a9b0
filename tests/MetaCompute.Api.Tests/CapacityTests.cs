using System.Net;
using System.Net.Http.Json;
using MetaCompute.Api.Reservations;
using MetaCompute.Api.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace MetaCompute.Api.Tests;

/// <summary>Owns the B200 pool (whole nodes) of its database: the races and the sold-out cases.</summary>
public sealed class CapacityTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private const string Pool = "eu-dublin-1-b200";

    /// <summary>A tenant whose quota never binds, so capacity alone decides.</summary>
    private async Task<TestTenant> TenantWithoutQuotaLimitAsync(Data.TenantKind kind = Data.TenantKind.External)
    {
        var tenant = await api.CreateTenantAsync(kind: kind);
        using var operatorClient = api.OperatorClient();
        (await operatorClient.PutAsJsonAsync($"/v1/admin/tenants/{tenant.Id}/quotas/{Pool}", new { maxConcurrentGpus = 100_000 })).EnsureSuccessStatusCode();
        return tenant;
    }

    /// <summary>A whole hour some days ahead: reserved blocks start and end on whole hours in these tests.</summary>
    private static DateTimeOffset HourAhead(int days)
    {
        var t = DateTimeOffset.UtcNow.AddDays(days);
        return new DateTimeOffset(t.Year, t.Month, t.Day, t.Hour, 0, 0, TimeSpan.Zero);
    }

    /// <summary>Books every sellable GPU of the pool for the window, in reservations of at most the pool's maximum.</summary>
    private static async Task<List<string>> FillAsync(HttpClient client, int gpus, DateTimeOffset start, int hours)
    {
        var ids = new List<string>();
        for (var left = gpus; left > 0; left -= 128)
        {
            var booked = await client.ReserveAsync(new { poolId = Pool, gpuCount = Math.Min(128, left), startAt = start, durationHours = hours, tier = "reserved" });
            ids.Add((await booked.ReadReservationAsync()).Id);
        }

        return ids;
    }

    /// <summary>Healthy GPUs minus the first-party holdback: what the pool may sell to tenants.</summary>
    private async Task<int> SellableGpusAsync() => (int)await api.ScalarAsync<long>("""
        SELECT (SELECT count(*) * 8 FROM nodes WHERE pool_id = $1 AND state = 'Healthy') - (SELECT rules_holdback_gpus FROM pools WHERE id = $1)
        """, Pool);

    [Fact]
    public async Task Parallel_bookings_for_room_for_exactly_k_give_k_created_and_the_rest_409_with_no_overlap()
    {
        var sellable = await SellableGpusAsync();
        var size = sellable / 3 / 8 * 8;
        var fits = sellable / size;
        var tenant = await TenantWithoutQuotaLimitAsync();
        using var client = api.ClientWithKey(tenant.ApiKey);
        var start = DateTimeOffset.UtcNow.AddDays(3).ToString("O");

        var responses = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ =>
            client.ReserveAsync(new { poolId = Pool, gpuCount = size, startAt = start, durationHours = 4, tier = "reserved" })));

        Assert.DoesNotContain(responses, r => (int)r.StatusCode >= 500);
        Assert.Equal(fits, responses.Count(r => r.StatusCode == HttpStatusCode.Created));
        foreach (var refused in responses.Where(r => r.StatusCode != HttpStatusCode.Created))
        {
            await refused.AssertProblemAsync(HttpStatusCode.Conflict, ReservationEndpoints.InsufficientCapacityType);
        }

        Assert.Equal(0L, await api.ScalarAsync<long>(TenantClient.OverlapSql));
        Assert.Equal((long)fits * size, await api.ScalarAsync<long>("""
            SELECT count(*) FROM allocations a JOIN leases l ON l.id = a.lease_id JOIN reservations r ON r.id = l.reservation_id WHERE r.tenant_id = $1
            """, Guid.Parse(tenant.Id)));
    }

    [Fact]
    public async Task Gpus_released_by_a_cancellation_can_be_booked_again_at_once()
    {
        var sellable = await SellableGpusAsync();
        var tenant = await TenantWithoutQuotaLimitAsync();
        using var client = api.ClientWithKey(tenant.ApiKey);
        var ids = new List<string>();
        for (var left = sellable; left > 0; left -= 128)
        {
            var booked = await client.ReserveAsync(new { poolId = Pool, gpuCount = Math.Min(128, left), durationHours = 1 });
            ids.Add((await booked.ReadReservationAsync()).Id);
        }

        // Sold out now: the GPUs just released are the only room, free from the moment of release, not from the next second.
        var released = await (await client.PostIdempotentAsync($"/v1/reservations/{ids[0]}/cancel", null)).ReadReservationAsync();
        var again = await client.ReserveAsync(new { poolId = Pool, gpuCount = Math.Min(128, sellable), durationHours = 1 });

        var rebooked = await again.ReadReservationAsync();
        Assert.True(rebooked.StartAt >= released.Lease!.EndAt, $"{rebooked.StartAt:O} starts before {released.Lease.EndAt:O}");
        Assert.Equal(TimeSpan.FromHours(1), rebooked.EndAt - rebooked.StartAt);
        Assert.Equal(0L, await api.ScalarAsync<long>(TenantClient.OverlapSql));
        foreach (var id in ids.Skip(1).Append(rebooked.Id))
        {
            (await client.PostIdempotentAsync($"/v1/reservations/{id}/cancel", null)).EnsureSuccessStatusCode();
        }
    }

    [Fact]
    public async Task A_sold_out_window_is_409_with_alternatives_that_start_when_capacity_frees_up()
    {
        var sellable = await SellableGpusAsync();
        var tenant = await TenantWithoutQuotaLimitAsync();
        using var client = api.ClientWithKey(tenant.ApiKey);
        var start = HourAhead(10);
        await FillAsync(client, sellable, start, 4);

        var refused = await client.ReserveAsync(new { poolId = Pool, gpuCount = 16, startAt = start.AddHours(1), durationHours = 2, tier = "reserved" });

        var problem = await refused.AssertProblemAsync(HttpStatusCode.Conflict, ReservationEndpoints.InsufficientCapacityType);
        var alternatives = problem.GetProperty("alternatives").EnumerateArray().ToList();
        Assert.InRange(alternatives.Count, 1, 3);
        Assert.Equal(start.AddHours(4), alternatives[0].GetProperty("startAt").GetDateTimeOffset());

        var booked = await client.ReserveAsync(new { offeringId = alternatives[0].GetProperty("offeringId").GetString() });
        Assert.Equal(HttpStatusCode.Created, booked.StatusCode);
    }

    [Fact]
    public async Task An_extension_runs_up_to_the_next_booking_of_the_same_gpus()
    {
        var tenant = await api.CreateTenantAsync();
        using var client = api.ClientWithKey(tenant.ApiKey);
        var start = HourAhead(20);
        var sellable = await SellableGpusAsync();
        // Fill the pool for [start, start+4h) and again for [start+6h, start+10h): the same placement takes the same GPUs.
        var ids = await FillAsync(client, sellable, start, 4);
        await FillAsync(client, sellable, start.AddHours(6), 4);

        var first = ids[0];
        var tooLong = await client.PostIdempotentAsync($"/v1/reservations/{first}/extend", new { additionalHours = 3 });
        var problem = await tooLong.AssertProblemAsync(HttpStatusCode.Conflict, ReservationEndpoints.ExtensionNotPossibleType);
        Assert.Equal(2, problem.GetProperty("maxAdditionalHours").GetInt32());

        var ok = await (await client.PostIdempotentAsync($"/v1/reservations/{first}/extend", new { additionalHours = 2 })).ReadReservationAsync();
        Assert.Equal(start.AddHours(6), ok.EndAt);
        Assert.Equal(0L, await api.ScalarAsync<long>(TenantClient.OverlapSql));
    }

    [Fact]
    public async Task The_quota_caps_concurrent_gpus_over_the_whole_window()
    {
        var tenant = await api.CreateTenantAsync();
        using var operatorClient = api.OperatorClient();
        (await operatorClient.PutAsJsonAsync($"/v1/admin/tenants/{tenant.Id}/quotas/{Pool}", new { maxConcurrentGpus = 16 })).EnsureSuccessStatusCode();
        using var client = api.ClientWithKey(tenant.ApiKey);
        var start = HourAhead(30);

        (await client.ReserveAsync(new { poolId = Pool, gpuCount = 16, startAt = start.AddHours(2), durationHours = 2, tier = "reserved" })).EnsureSuccessStatusCode();
        var overlapping = await client.ReserveAsync(new { poolId = Pool, gpuCount = 8, startAt = start, durationHours = 3, tier = "reserved" });
        var problem = await overlapping.AssertProblemAsync(HttpStatusCode.Conflict, Quotas.ExceededType);
        Assert.Equal(16, problem.GetProperty("quota").GetInt32());

        var before = await client.ReserveAsync(new { poolId = Pool, gpuCount = 8, startAt = start, durationHours = 2, tier = "reserved" });
        Assert.Equal(HttpStatusCode.Created, before.StatusCode);
    }

    [Fact]
    public async Task Parallel_bookings_within_a_quota_never_exceed_it()
    {
        var tenant = await api.CreateTenantAsync();
        using var operatorClient = api.OperatorClient();
        (await operatorClient.PutAsJsonAsync($"/v1/admin/tenants/{tenant.Id}/quotas/{Pool}", new { maxConcurrentGpus = 24 })).EnsureSuccessStatusCode();
        using var client = api.ClientWithKey(tenant.ApiKey);
        var start = DateTimeOffset.UtcNow.AddDays(40).ToString("O");
        var responses = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ =>
            client.ReserveAsync(new { poolId = Pool, gpuCount = 8, startAt = start, durationHours = 2, tier = "reserved" })));
        Assert.Equal(3, responses.Count(r => r.StatusCode == HttpStatusCode.Created));
        Assert.Equal(5, responses.Count(r => r.StatusCode == HttpStatusCode.Conflict));
    }

    [Fact]
    public async Task A_second_replica_sees_the_first_replicas_bookings_through_the_change_log()
    {
        var tenant = await TenantWithoutQuotaLimitAsync();
        await using var replica = new ApiFactory.Replica(api.ConnectionString);
        using var first = api.ClientWithKey(tenant.ApiKey);
        using var second = replica.CreateClient();
        second.DefaultRequestHeaders.Authorization = new("Bearer", tenant.ApiKey);
        var start = HourAhead(50);
        object Block(int gpus) => new { poolId = Pool, gpuCount = gpus, startAt = start, durationHours = 2, tier = "reserved" };

        // The replica builds its index first, then the first instance sells everything else.
        (await second.ReserveAsync(Block(8))).EnsureSuccessStatusCode();
        await FillAsync(first, await SellableGpusAsync() - 8, start, 2);

        var refused = await second.ReserveAsync(Block(8));
        await refused.AssertProblemAsync(HttpStatusCode.Conflict, ReservationEndpoints.InsufficientCapacityType);
        Assert.Equal(0L, await api.ScalarAsync<long>(TenantClient.OverlapSql));
    }

    [Fact]
    public async Task Only_first_party_demand_may_use_the_holdback()
    {
        var external = await TenantWithoutQuotaLimitAsync();
        var internalTenant = await TenantWithoutQuotaLimitAsync(Data.TenantKind.Internal);

        using var client = api.ClientWithKey(external.ApiKey);
        using var firstParty = api.ClientWithKey(internalTenant.ApiKey);
        var start = HourAhead(45);
        var holdback = await api.ScalarAsync<int>("SELECT rules_holdback_gpus FROM pools WHERE id = $1", Pool);
        await FillAsync(client, await SellableGpusAsync(), start, 2);

        var refused = await client.ReserveAsync(new { poolId = Pool, gpuCount = 8, startAt = start, durationHours = 2, tier = "reserved" });
        await refused.AssertProblemAsync(HttpStatusCode.Conflict, ReservationEndpoints.InsufficientCapacityType);

        var internalBooking = await (await firstParty.ReserveAsync(new { poolId = Pool, gpuCount = holdback, startAt = start, durationHours = 2 }))
            .ReadReservationAsync();
        Assert.Equal(Data.ReservationTier.Internal, internalBooking.Tier);
        var prices = await api.ScalarAsync<decimal>("SELECT prices_internal FROM pools WHERE id = $1", Pool);
        Assert.Equal(prices, internalBooking.Price.PricePerGpuHour);
        Assert.Equal(0L, await api.ScalarAsync<long>(TenantClient.OverlapSql));
    }

    [Fact]
    public async Task Availability_shows_a_booking_in_the_steps_it_covers()
    {
        var tenant = await TenantWithoutQuotaLimitAsync();
        using var client = api.ClientWithKey(tenant.ApiKey);
        var start = HourAhead(55);
        (await client.ReserveAsync(new { poolId = Pool, gpuCount = 16, startAt = start, durationHours = 2, tier = "reserved" })).EnsureSuccessStatusCode();

        var from = Uri.EscapeDataString(start.AddHours(-1).ToString("O"));
        var to = Uri.EscapeDataString(start.AddHours(3).ToString("O"));
        var availability = (await client.GetFromJsonAsync<Catalog.AvailabilityResponse>(
            $"/v1/pools/{Pool}/availability?from={from}&to={to}&stepMinutes=60", Json.Options))!;

        var sellable = await SellableGpusAsync();
        Assert.Equal([sellable, sellable - 16, sellable - 16, sellable], availability.Steps.Select(s => s.FreeGpus));
        var healthy = sellable + await api.ScalarAsync<int>("SELECT rules_holdback_gpus FROM pools WHERE id = $1", Pool);
        Assert.All(availability.Steps, s => Assert.Equal(healthy, s.HealthyGpus));
    }

    [Fact]
    public async Task A_replica_that_fell_behind_a_pruned_change_log_rebuilds_its_index()
    {
        var tenant = await TenantWithoutQuotaLimitAsync();
        await using var replica = new ApiFactory.Replica(api.ConnectionString);
        using var first = api.ClientWithKey(tenant.ApiKey);
        using var second = replica.CreateClient();
        second.DefaultRequestHeaders.Authorization = new("Bearer", tenant.ApiKey);
        var start = HourAhead(52);
        (await second.ReserveAsync(new { poolId = Pool, gpuCount = 8, startAt = start, durationHours = 2, tier = "reserved" })).EnsureSuccessStatusCode();
        await FillAsync(first, await SellableGpusAsync() - 8, start, 2);

        // Prune as the retention sweep would two hours later: only each pool's newest entry survives.
        await using (var scope = api.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<Data.MetaComputeDbContext>();
            await Maintenance.RetentionSweep.RunAsync(db, new Maintenance.RetentionOptions(), DateTimeOffset.UtcNow.AddHours(2), CancellationToken.None);
        }

        Assert.Equal(1L, await api.ScalarAsync<long>("SELECT count(*) FROM pool_changes WHERE pool_id = $1", Pool));
        var refused = await second.ReserveAsync(new { poolId = Pool, gpuCount = 8, startAt = start, durationHours = 2, tier = "reserved" });
        await refused.AssertProblemAsync(HttpStatusCode.Conflict, ReservationEndpoints.InsufficientCapacityType);
        Assert.Equal(0L, await api.ScalarAsync<long>(TenantClient.OverlapSql));
    }
}
