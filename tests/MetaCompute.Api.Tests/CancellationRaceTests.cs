using System.Net;
using System.Net.Http.Json;
using MetaCompute.Api.Data;
using MetaCompute.Api.Reservations;
using MetaCompute.Api.Scheduling;
using MetaCompute.Api.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace MetaCompute.Api.Tests;

/// <summary>
/// Cancellations fired in parallel with what they could race — bookings of the GPUs they free, extensions of the same
/// reservation, the lifecycle tick, a node failing under them — and then the tables read: nothing overlaps, nothing
/// cancelled still holds a GPU, and every GPU freed can be sold again.
/// </summary>
public sealed class CancellationRaceTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private const string Pool = "us-ohio-1-h100";

    /// <summary>Allocation rows of cancelled reservations that still hold a GPU after the cancellation.</summary>
    private const string HeldAfterCancellationSql = """
        SELECT count(*) FROM allocations a JOIN leases l ON l.id = a.lease_id JOIN reservations r ON r.id = l.reservation_id
        WHERE r.status = 'Cancelled' AND upper(a.period) > r.cancelled_at
        """;

    private static async Task<List<ReservationResponse>> BookAsync(HttpClient client, int count, int gpus) =>
        [.. await Task.WhenAll(Enumerable.Range(0, count).Select(async _ =>
            await (await client.ReserveAsync(new { poolId = Pool, gpuCount = gpus, durationHours = 1 })).ReadReservationAsync()))];

    private static Task<HttpResponseMessage> CancelAsync(HttpClient client, string id) =>
        client.PostIdempotentAsync($"/v1/reservations/{id}/cancel", null);

    [Fact]
    public async Task Cancellations_beside_bookings_in_a_sold_out_pool_never_overlap_and_every_freed_gpu_is_sold_again()
    {
        using var client = await api.ClientWithoutQuotaLimitAsync(TenantKind.External, Pool);
        var held = await BookAsync(client, (await client.PoolAsync(Pool)).Sellable() / 8, 8);
        const int freed = 12;

        // The pool is sold out: bookings of whole nodes race the cancellations that free twelve of them.
        var cancelling = held.Take(freed).Select(r => CancelAsync(client, r.Id)).ToList();
        var booking = Enumerable.Range(0, 20).Select(_ => client.ReserveAsync(new { poolId = Pool, gpuCount = 8, durationHours = 1 })).ToList();
        var cancels = await Task.WhenAll(cancelling);
        var bookings = await Task.WhenAll(booking);

        Assert.All(cancels, c => Assert.Equal(HttpStatusCode.OK, c.StatusCode));
        var booked = bookings.Where(b => b.StatusCode == HttpStatusCode.Created).ToList();
        foreach (var refused in bookings.Except(booked))
        {
            await refused.AssertProblemAsync(HttpStatusCode.Conflict, ReservationEndpoints.InsufficientCapacityType);
        }

        // Once the cancellations are answered, the index knows every one of them: the rest of the freed nodes sell, and no more.
        var later = new List<ReservationResponse>();
        while (await client.ReserveAsync(new { poolId = Pool, gpuCount = 8, durationHours = 1 }) is { StatusCode: HttpStatusCode.Created } more)
        {
            later.Add(await more.ReadReservationAsync());
        }

        Assert.Equal(freed, booked.Count + later.Count);
        Assert.Equal(0L, await api.ScalarAsync<long>(TenantClient.OverlapSql));
        Assert.Equal(0L, await api.ScalarAsync<long>(HeldAfterCancellationSql));
        var rest = held.Skip(freed).Select(r => r.Id).Concat(later.Select(r => r.Id));
        foreach (var created in booked)
        {
            rest = rest.Append((await created.ReadReservationAsync()).Id);
        }

        Assert.All(await Task.WhenAll(rest.Select(id => CancelAsync(client, id))), c => Assert.Equal(HttpStatusCode.OK, c.StatusCode));
    }

    [Fact]
    public async Task A_cancellation_racing_an_extension_of_the_same_reservation_leaves_it_cancelled_with_nothing_held_after()
    {
        using var client = await api.ClientWithoutQuotaLimitAsync(TenantKind.External, Pool);
        var reservations = await BookAsync(client, 10, 1);

        var raced = await Task.WhenAll(reservations.Select(async r =>
        {
            var cancel = CancelAsync(client, r.Id);
            var extend = client.PostIdempotentAsync($"/v1/reservations/{r.Id}/extend", new { additionalHours = 1 });
            return (Cancel: await cancel, Extend: await extend);
        }));

        foreach (var (cancel, extend) in raced)
        {
            // The extension either came first (and the cancellation ended it) or found the reservation cancelled.
            Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
            Assert.Contains(extend.StatusCode, new[] { HttpStatusCode.OK, HttpStatusCode.Conflict });
            var cancelled = await cancel.ReadReservationAsync();
            Assert.Equal(ReservationStatus.Cancelled, cancelled.Status);
            Assert.Equal(cancelled.Lease!.EndAt.UtcDateTime, await api.ScalarAsync<DateTime>("""
                SELECT max(upper(a.period)) FROM allocations a JOIN leases l ON l.id = a.lease_id WHERE l.reservation_id = $1
                """, Guid.Parse(cancelled.Id)));
        }

        Assert.Equal(0L, await api.ScalarAsync<long>(HeldAfterCancellationSql));
        Assert.Equal(0L, await api.ScalarAsync<long>(TenantClient.OverlapSql));
    }

    [Fact]
    public async Task Cancellations_beside_the_lifecycle_tick_all_land_and_the_tick_does_not_undo_them()
    {
        using var client = await api.ClientWithoutQuotaLimitAsync(TenantKind.External, Pool);
        var reservations = await BookAsync(client, 16, 1);

        var ticks = Enumerable.Range(0, 4).Select(async _ =>
        {
            await using var scope = api.Services.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<MetaComputeDbContext>();
            return await LifecycleTick.RunAsync(db, new SchedulerOptions(), DateTimeOffset.UtcNow, CancellationToken.None);
        }).ToList();
        var cancels = await Task.WhenAll(reservations.Select(r => CancelAsync(client, r.Id)));
        await Task.WhenAll(ticks);

        Assert.All(cancels, c => Assert.Equal(HttpStatusCode.OK, c.StatusCode));
        var ids = reservations.Select(r => Guid.Parse(r.Id)).ToArray();
        Assert.Equal(16L, await api.ScalarAsync<long>("SELECT count(*) FROM reservations WHERE id = ANY($1) AND status = 'Cancelled'", ids));
        Assert.Equal(16L, await api.ScalarAsync<long>(
            "SELECT count(*) FROM events WHERE reservation_id = ANY($1) AND type = 'reservation.cancelled'", ids));
        Assert.Equal(0L, await api.ScalarAsync<long>(HeldAfterCancellationSql));
    }

    [Fact]
    public async Task A_node_failing_while_its_leases_are_cancelled_moves_none_of_them_back_into_use()
    {
        using var client = await api.ClientWithoutQuotaLimitAsync(TenantKind.External, Pool);
        using var operatorClient = api.OperatorClient();
        for (var round = 0; round < 3; round++)
        {
            // Best fit packs single GPUs onto one partly used node; the failure moves whatever is still held there.
            var reservations = await BookAsync(client, 8, 1);
            var node = reservations[0].Lease!.Nodes.Single().NodeId;

            var failing = operatorClient.PostAsync($"/v1/admin/nodes/{node}/fail", null);
            var cancels = await Task.WhenAll(reservations.Select(r => CancelAsync(client, r.Id)));
            (await failing).EnsureSuccessStatusCode();

            Assert.All(cancels, c => Assert.Equal(HttpStatusCode.OK, c.StatusCode));
            Assert.Equal(0L, await api.ScalarAsync<long>(HeldAfterCancellationSql));
            Assert.Equal(0L, await api.ScalarAsync<long>(TenantClient.OverlapSql));
            (await operatorClient.PostAsync($"/v1/admin/nodes/{node}/restore", null)).EnsureSuccessStatusCode();
        }
    }
}
