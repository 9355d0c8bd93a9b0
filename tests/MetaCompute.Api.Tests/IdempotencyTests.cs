using System.Net;
using MetaCompute.Api.Idempotency;
using MetaCompute.Api.Maintenance;
using MetaCompute.Api.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace MetaCompute.Api.Tests;

public sealed class IdempotencyTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private static object Body(int gpus = 2) => new { poolId = "us-ohio-1-h100", gpuCount = gpus, durationHours = 1 };

    [Fact]
    public async Task The_same_key_and_body_replay_the_first_answer_and_book_once()
    {
        var tenant = await api.CreateTenantAsync();
        using var client = api.ClientWithKey(tenant.ApiKey);
        var first = await client.ReserveAsync(Body(), key: "retry-me");
        var second = await client.ReserveAsync(Body(), key: "retry-me");

        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        Assert.Equal(HttpStatusCode.Created, second.StatusCode);
        Assert.Equal(await first.Content.ReadAsStringAsync(), await second.Content.ReadAsStringAsync());
        Assert.Equal(first.Headers.Location, second.Headers.Location);
        Assert.Equal("true", second.Headers.GetValues("Idempotent-Replayed").Single());
        Assert.Equal(1L, await api.ScalarAsync<long>("SELECT count(*) FROM reservations WHERE tenant_id = $1", Guid.Parse(tenant.Id)));
    }

    [Fact]
    public async Task The_same_key_with_another_body_is_422_and_changes_nothing()
    {
        var tenant = await api.CreateTenantAsync();
        using var client = api.ClientWithKey(tenant.ApiKey);
        await client.ReserveAsync(Body(2), key: "k");
        var reused = await client.ReserveAsync(Body(3), key: "k");
        await reused.AssertProblemAsync(HttpStatusCode.UnprocessableEntity, IdempotentRequest.KeyReusedType);
        Assert.Equal(1L, await api.ScalarAsync<long>("SELECT count(*) FROM reservations WHERE tenant_id = $1", Guid.Parse(tenant.Id)));
    }

    [Fact]
    public async Task Keys_are_scoped_per_tenant()
    {
        var alice = await api.CreateTenantAsync();
        var bob = await api.CreateTenantAsync();
        using var aliceClient = api.ClientWithKey(alice.ApiKey);
        using var bobClient = api.ClientWithKey(bob.ApiKey);
        var a = await (await aliceClient.ReserveAsync(Body(), key: "shared")).ReadReservationAsync();
        var b = await (await bobClient.ReserveAsync(Body(), key: "shared")).ReadReservationAsync();
        Assert.NotEqual(a.Id, b.Id);
    }

    [Fact]
    public async Task A_missing_key_is_400_and_books_nothing()
    {
        var tenant = await api.CreateTenantAsync();
        using var client = api.ClientWithKey(tenant.ApiKey);
        var response = await client.PostAsync("/v1/reservations", System.Net.Http.Json.JsonContent.Create(Body()));
        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, IdempotentRequest.KeyMissingType);
        Assert.True(problem.GetProperty("errors").TryGetProperty("Idempotency-Key", out _));
        Assert.Equal(0L, await api.ScalarAsync<long>("SELECT count(*) FROM reservations WHERE tenant_id = $1", Guid.Parse(tenant.Id)));
    }

    [Fact]
    public async Task A_key_over_255_characters_is_400_naming_its_length_and_books_nothing()
    {
        var tenant = await api.CreateTenantAsync();
        using var client = api.ClientWithKey(tenant.ApiKey);
        var response = await client.ReserveAsync(Body(), key: new string('k', 256));
        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, IdempotentRequest.KeyMissingType);
        Assert.Equal("At most 255 characters; this one has 256.", problem.GetProperty("errors").GetProperty("Idempotency-Key")[0].GetString());
        Assert.Equal(0L, await api.ScalarAsync<long>("SELECT count(*) FROM reservations WHERE tenant_id = $1", Guid.Parse(tenant.Id)));
    }

    [Fact]
    public async Task Twenty_parallel_requests_with_one_key_make_one_reservation_and_every_completed_answer_is_identical()
    {
        var tenant = await api.CreateTenantAsync();
        using var client = api.ClientWithKey(tenant.ApiKey);
        var responses = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => client.ReserveAsync(Body(4), key: "parallel")));

        Assert.All(responses, r => Assert.True(r.StatusCode is HttpStatusCode.Created or HttpStatusCode.Conflict, $"unexpected {r.StatusCode}"));
        var completed = responses.Where(r => r.StatusCode == HttpStatusCode.Created).ToList();
        Assert.NotEmpty(completed);
        var bodies = await Task.WhenAll(completed.Select(r => r.Content.ReadAsStringAsync()));
        Assert.Single(bodies.Distinct());
        foreach (var inFlight in responses.Where(r => r.StatusCode == HttpStatusCode.Conflict))
        {
            await inFlight.AssertProblemAsync(HttpStatusCode.Conflict, IdempotentRequest.KeyInFlightType);
        }

        Assert.Equal(1L, await api.ScalarAsync<long>("SELECT count(*) FROM reservations WHERE tenant_id = $1", Guid.Parse(tenant.Id)));
        Assert.Equal(4L, await api.ScalarAsync<long>(
            "SELECT count(*) FROM allocations a JOIN leases l ON l.id = a.lease_id JOIN reservations r ON r.id = l.reservation_id WHERE r.tenant_id = $1",
            Guid.Parse(tenant.Id)));

        // A retry after everything settled gets the stored answer too.
        var late = await client.ReserveAsync(Body(4), key: "parallel");
        Assert.Equal(bodies[0], await late.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Cancel_and_extend_are_idempotent_too()
    {
        var tenant = await api.CreateTenantAsync();
        using var client = api.ClientWithKey(tenant.ApiKey);
        var reservation = await (await client.ReserveAsync(Body())).ReadReservationAsync();
        var extend1 = await client.PostIdempotentAsync($"/v1/reservations/{reservation.Id}/extend", new { additionalHours = 1 }, key: "ext");
        var extend2 = await client.PostIdempotentAsync($"/v1/reservations/{reservation.Id}/extend", new { additionalHours = 1 }, key: "ext");
        Assert.Equal(await extend1.Content.ReadAsStringAsync(), await extend2.Content.ReadAsStringAsync());
        Assert.Equal(reservation.EndAt.AddHours(1), (await extend2.ReadReservationAsync()).EndAt);

        var cancel1 = await client.PostIdempotentAsync($"/v1/reservations/{reservation.Id}/cancel", null, key: "cxl");
        var cancel2 = await client.PostIdempotentAsync($"/v1/reservations/{reservation.Id}/cancel", null, key: "cxl");
        Assert.Equal(HttpStatusCode.OK, cancel2.StatusCode);
        Assert.Equal(await cancel1.Content.ReadAsStringAsync(), await cancel2.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Keys_are_kept_for_24_hours_and_then_pruned()
    {
        var tenant = await api.CreateTenantAsync();
        using var client = api.ClientWithKey(tenant.ApiKey);
        await client.ReserveAsync(Body(), key: "old");
        var tenantId = Guid.Parse(tenant.Id);

        await using var scope = api.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<Data.MetaComputeDbContext>();
        var options = new RetentionOptions();
        await RetentionSweep.RunAsync(db, options, DateTimeOffset.UtcNow.AddHours(23), CancellationToken.None);
        Assert.Equal(1L, await api.ScalarAsync<long>("SELECT count(*) FROM idempotency_keys WHERE tenant_id = $1", tenantId));

        await RetentionSweep.RunAsync(db, options, DateTimeOffset.UtcNow.AddHours(25), CancellationToken.None);
        Assert.Equal(0L, await api.ScalarAsync<long>("SELECT count(*) FROM idempotency_keys WHERE tenant_id = $1", tenantId));
    }
}

/// <summary>
/// Keys another replica stored: this process has not seen them, so its decider decides them unchecked, and the key
/// row's primary key must send the request back to be looked up instead of being answered twice.
/// </summary>
public sealed class IdempotencyAcrossReplicasTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private static object Body(int gpus = 1) => new { poolId = "us-ohio-1-h100", gpuCount = gpus, durationHours = 1 };

    [Fact]
    public async Task A_key_first_used_on_another_replica_replays_its_answer_here_and_another_body_is_422()
    {
        var tenant = await api.CreateTenantAsync();
        await using var replica = new ApiFactory.Replica(api.ConnectionString);
        using var there = replica.CreateClient();
        there.DefaultRequestHeaders.Authorization = new("Bearer", tenant.ApiKey);
        using var here = api.ClientWithKey(tenant.ApiKey);

        var first = await there.ReserveAsync(Body(), key: "booked-there");
        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        (await there.ReserveAsync(Body(), key: "reused-there")).EnsureSuccessStatusCode();

        var replayed = await here.ReserveAsync(Body(), key: "booked-there");
        var reused = await here.ReserveAsync(Body(2), key: "reused-there");

        Assert.Equal(HttpStatusCode.Created, replayed.StatusCode);
        Assert.Equal(await first.Content.ReadAsStringAsync(), await replayed.Content.ReadAsStringAsync());
        Assert.Equal("true", replayed.Headers.GetValues("Idempotent-Replayed").Single());
        await reused.AssertProblemAsync(HttpStatusCode.UnprocessableEntity, IdempotentRequest.KeyReusedType);
        Assert.Equal(2L, await api.ScalarAsync<long>("SELECT count(*) FROM reservations WHERE tenant_id = $1", Guid.Parse(tenant.Id)));
    }

    [Fact]
    public async Task A_stored_key_among_new_ones_in_parallel_books_each_new_one_once_and_replays_the_stored_one()
    {
        var tenant = await api.CreateTenantAsync();
        await using var replica = new ApiFactory.Replica(api.ConnectionString);
        using var there = replica.CreateClient();
        there.DefaultRequestHeaders.Authorization = new("Bearer", tenant.ApiKey);
        using var here = api.ClientWithKey(tenant.ApiKey);
        var first = await there.ReserveAsync(Body(), key: "stored");
        Assert.Equal(HttpStatusCode.Created, first.StatusCode);

        // If the stored key shares a batch with the new ones, the batch fails on it and every request in it is decided
        // again on its own: none may be lost or booked twice.
        var responses = await Task.WhenAll(Enumerable.Range(0, 12)
            .Select(i => here.ReserveAsync(Body(), key: i == 6 ? "stored" : $"new-{i}")));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.Created, r.StatusCode));
        Assert.Equal(await first.Content.ReadAsStringAsync(), await responses[6].Content.ReadAsStringAsync());
        Assert.Equal(12L, await api.ScalarAsync<long>("SELECT count(*) FROM reservations WHERE tenant_id = $1", Guid.Parse(tenant.Id)));
        Assert.Equal(12L, await api.ScalarAsync<long>("SELECT count(*) FROM idempotency_keys WHERE tenant_id = $1", Guid.Parse(tenant.Id)));
        Assert.Equal(0L, await api.ScalarAsync<long>(TenantClient.OverlapSql));
    }
}

public sealed class IdempotencyInFlightTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    [Fact]
    public async Task A_key_whose_first_request_is_still_running_elsewhere_is_409_with_retry_after()
    {
        var tenant = await api.CreateTenantAsync();
        using var client = api.ClientWithKey(tenant.ApiKey);
        // Another replica mid-transaction on this key holds the key's transaction lock; take it the same way.
        var lockKey = BitConverter.ToInt64(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"{tenant.Id}:busy")));
        await using var other = await api.OpenConnectionAsync();
        await using var tx = await other.BeginTransactionAsync();
        await using (var take = new Npgsql.NpgsqlCommand($"SELECT pg_advisory_xact_lock({lockKey})", other, tx))
        {
            await take.ExecuteNonQueryAsync();
        }

        var response = await client.ReserveAsync(new { poolId = "us-ohio-1-h100", gpuCount = 1, durationHours = 1 }, key: "busy");

        await response.AssertProblemAsync(HttpStatusCode.Conflict, IdempotentRequest.KeyInFlightType);
        Assert.Equal(TimeSpan.FromSeconds(1), response.Headers.RetryAfter?.Delta);
        await tx.RollbackAsync();
        var retried = await client.ReserveAsync(new { poolId = "us-ohio-1-h100", gpuCount = 1, durationHours = 1 }, key: "busy");
        Assert.Equal(HttpStatusCode.Created, retried.StatusCode);
        Assert.Equal(1L, await api.ScalarAsync<long>("SELECT count(*) FROM reservations WHERE tenant_id = $1", Guid.Parse(tenant.Id)));
    }
}
