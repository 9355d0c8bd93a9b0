using System.Net;
using System.Net.Http.Json;
using MetaCompute.Api.Data;
using MetaCompute.Api.Events;
using MetaCompute.Api.Infrastructure;
using MetaCompute.Api.Offerings;
using MetaCompute.Api.Reservations;
using MetaCompute.Api.Tests.Infrastructure;

namespace MetaCompute.Api.Tests;

public sealed class ReservationJourneyTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private const string Pool = "us-ohio-1-h100";

    [Fact]
    public async Task Offerings_then_book_get_extend_cancel_and_the_event_feed()
    {
        var tenant = await api.CreateTenantAsync();
        using var client = api.ClientWithKey(tenant.ApiKey);
        var earliest = DateTimeOffset.UtcNow.AddDays(2);

        var offerings = (await client.GetFromJsonAsync<Page<OfferingResponse>>(
            $"/v1/offerings?poolId={Pool}&gpuCount=16&durationHours=6&earliestStart={Uri.EscapeDataString(earliest.ToString("O"))}&limit=3",
            Json.Options))!.Items;
        Assert.NotEmpty(offerings);
        var offering = offerings[0];
        Assert.Equal(16, offering.GpuCount);
        Assert.Equal(offering.StartAt.AddHours(6), offering.EndAt);
        Assert.Equal(ReservationTier.Reserved, offering.Tier);
        Assert.Equal(decimal.Round(offering.PricePerGpuHour * 16 * 6, 6), offering.TotalPrice);

        var created = await client.ReserveAsync(new { offeringId = offering.OfferingId });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var reservation = await created.ReadReservationAsync();
        Assert.Equal($"/v1/reservations/{reservation.Id}", created.Headers.Location!.OriginalString);
        Assert.Equal(ReservationStatus.Scheduled, reservation.Status);
        Assert.Equal((offering.StartAt, offering.EndAt), (reservation.StartAt, reservation.EndAt));
        Assert.Equal(16, reservation.Lease!.Nodes.Sum(n => n.GpuIndices.Count));
        Assert.All(reservation.Lease.Nodes, n => Assert.Equal(8, n.GpuIndices.Count));
        Assert.Equal(offering.TotalPrice, reservation.Price.Total);

        var got = await client.GetAsync($"/v1/reservations/{reservation.Id}");
        Assert.Equal(HttpStatusCode.OK, got.StatusCode);
        Assert.NotNull(got.Headers.ETag);

        var extended = await (await client.PostIdempotentAsync($"/v1/reservations/{reservation.Id}/extend", new { additionalHours = 2 }))
            .ReadReservationAsync();
        Assert.Equal(reservation.EndAt.AddHours(2), extended.EndAt);
        Assert.Equal(reservation.Lease.Nodes.Select(n => n.NodeId), extended.Lease!.Nodes.Select(n => n.NodeId));
        Assert.Equal(decimal.Round(offering.PricePerGpuHour * 16 * 8, 6), extended.Price.Total);

        var cancelled = await (await client.PostIdempotentAsync($"/v1/reservations/{reservation.Id}/cancel", null)).ReadReservationAsync();
        Assert.Equal(ReservationStatus.Cancelled, cancelled.Status);
        Assert.Null(cancelled.Lease);
        Assert.Equal(0L, await api.ScalarAsync<long>("SELECT count(*) FROM allocations a JOIN leases l ON l.id = a.lease_id WHERE l.reservation_id = $1",
            Guid.Parse(reservation.Id)));

        // The feed holds an event back while any older transaction on the server is still running (ADR 0004).
        var events = await client.ReadEventsUntilAsync(page => page.Items.Count(e => e.ReservationId == reservation.Id) >= 3);
        Assert.Equal([EventTypes.ReservationScheduled, EventTypes.ReservationExtended, EventTypes.ReservationCancelled],
            events.Items.Where(e => e.ReservationId == reservation.Id).Select(e => e.Type));
        var after = (await client.GetFromJsonAsync<Page<EventResponse>>($"/v1/events?after={events.NextPageToken}", Json.Options))!;
        Assert.Empty(after.Items);
        Assert.Equal(events.NextPageToken, after.NextPageToken);
    }

    [Fact]
    public async Task Cancelling_after_the_start_frees_the_gpus_from_now()
    {
        var tenant = await api.CreateTenantAsync();
        using var client = api.ClientWithKey(tenant.ApiKey);
        var reservation = await (await client.ReserveAsync(new { poolId = Pool, gpuCount = 8, durationHours = 3, tier = "on_demand" })).ReadReservationAsync();
        Assert.Equal(ReservationTier.OnDemand, reservation.Tier);

        var cancelled = await (await client.PostIdempotentAsync($"/v1/reservations/{reservation.Id}/cancel", null)).ReadReservationAsync();
        Assert.Equal(ReservationStatus.Cancelled, cancelled.Status);
        Assert.NotNull(cancelled.CancelledAt);
        var upper = await api.ScalarAsync<DateTime>(
            "SELECT max(upper(a.period)) FROM allocations a JOIN leases l ON l.id = a.lease_id WHERE l.reservation_id = $1", Guid.Parse(reservation.Id));
        Assert.True(upper <= DateTime.UtcNow && upper >= reservation.StartAt.UtcDateTime);
        Assert.Equal(cancelled.CancelledAt!.Value.UtcDateTime, upper, TimeSpan.FromMilliseconds(1));

        var again = await client.PostIdempotentAsync($"/v1/reservations/{reservation.Id}/cancel", null);
        await again.AssertProblemAsync(HttpStatusCode.Conflict, ReservationEndpoints.InvalidStateType);
    }

    [Fact]
    public async Task Small_requests_get_single_gpus_on_one_node()
    {
        var tenant = await api.CreateTenantAsync();
        using var client = api.ClientWithKey(tenant.ApiKey);
        var reservation = await (await client.ReserveAsync(new { poolId = Pool, gpuCount = 3, durationHours = 1 })).ReadReservationAsync();
        var node = Assert.Single(reservation.Lease!.Nodes);
        Assert.Equal(3, node.GpuIndices.Count);
    }

    public static TheoryData<string, string> InvalidRequests => new()
    {
        { """{"poolId":"us-ohio-1-h100","gpuCount":12,"durationHours":2}""", "gpuCount" },
        { """{"poolId":"us-ohio-1-h100","gpuCount":100000,"durationHours":2}""", "gpuCount" },
        { """{"poolId":"us-ohio-1-h200","gpuCount":4,"durationHours":2}""", "gpuCount" },
        { """{"poolId":"us-ohio-1-h100","gpuCount":8,"durationHours":100000}""", "durationHours" },
        { """{"poolId":"us-ohio-1-h100","gpuCount":8,"durationHours":0}""", "durationHours" },
        { """{"poolId":"us-ohio-1-h100","gpuCount":8}""", "durationHours" },
        { """{"poolId":"us-ohio-1-h100","gpuCount":8,"durationHours":2,"startAt":"2020-01-01T00:00:00Z"}""", "startAt" },
        { """{"poolId":"us-ohio-1-h100","gpuCount":8,"durationHours":2,"startAt":"2099-01-01T00:00:00Z"}""", "startAt" },
        { """{"poolId":"us-ohio-1-h100","gpuCount":8,"durationHours":2,"tier":"spot","startAt":"{{tomorrow}}"}""", "startAt" },
        { """{"poolId":"us-ohio-1-h100","gpuCount":8,"tier":"reserved","startAt":"{{tomorrow}}","endAt":"{{tomorrow+90m}}"}""", "endAt" },
        { """{"poolId":"us-ohio-1-h100","gpuCount":8,"startAt":"{{tomorrow}}","endAt":"{{tomorrow}}"}""", "endAt" },
        { """{"poolId":"us-ohio-1-h100","gpuCount":8,"durationHours":2,"tier":"internal"}""", "tier" },
        { """{"offeringId":"of_forged.token"}""", "offeringId" },
        { """{"offeringId":"of_x.y","poolId":"us-ohio-1-h100"}""", "offeringId" },
    };

    [Theory]
    [MemberData(nameof(InvalidRequests))]
    public async Task Invalid_requests_are_400_naming_the_field_and_book_nothing(string body, string field)
    {
        var tenant = await api.CreateTenantAsync();
        using var client = api.ClientWithKey(tenant.ApiKey);
        var tomorrow = DateTimeOffset.UtcNow.AddDays(1);
        body = body.Replace("{{tomorrow+90m}}", tomorrow.AddMinutes(90).ToString("O")).Replace("{{tomorrow}}", tomorrow.ToString("O"));
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/reservations") { Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json") };
        request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());

        var response = await client.SendAsync(request);

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, Problems.ValidationFailedType);
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), $"errors should name {field}: {problem}");
        Assert.Equal(0L, await api.ScalarAsync<long>("SELECT count(*) FROM reservations WHERE tenant_id = $1", Guid.Parse(tenant.Id)));
    }

    [Fact]
    public async Task An_unknown_pool_is_404()
    {
        var tenant = await api.CreateTenantAsync();
        using var client = api.ClientWithKey(tenant.ApiKey);
        var response = await client.ReserveAsync(new { poolId = "mars-1-h100", gpuCount = 8, durationHours = 1 });
        await response.AssertProblemAsync(HttpStatusCode.NotFound, Problems.NotFoundType);
    }

    [Fact]
    public async Task Another_tenants_reservation_is_404_to_get_cancel_and_extend_and_never_listed()
    {
        var alice = await api.CreateTenantAsync();
        var bob = await api.CreateTenantAsync();
        using var aliceClient = api.ClientWithKey(alice.ApiKey);
        using var bobClient = api.ClientWithKey(bob.ApiKey);
        var reservation = await (await aliceClient.ReserveAsync(new { poolId = Pool, gpuCount = 8, durationHours = 1 })).ReadReservationAsync();

        await (await bobClient.GetAsync($"/v1/reservations/{reservation.Id}")).AssertProblemAsync(HttpStatusCode.NotFound, Problems.NotFoundType);
        await (await bobClient.PostIdempotentAsync($"/v1/reservations/{reservation.Id}/cancel", null))
            .AssertProblemAsync(HttpStatusCode.NotFound, Problems.NotFoundType);
        await (await bobClient.PostIdempotentAsync($"/v1/reservations/{reservation.Id}/extend", new { additionalHours = 1 }))
            .AssertProblemAsync(HttpStatusCode.NotFound, Problems.NotFoundType);
        var list = (await bobClient.GetFromJsonAsync<Page<ReservationResponse>>("/v1/reservations", Json.Options))!;
        Assert.DoesNotContain(list.Items, r => r.Id == reservation.Id);
        var events = (await bobClient.GetFromJsonAsync<Page<EventResponse>>("/v1/events", Json.Options))!;
        Assert.DoesNotContain(events.Items, e => e.ReservationId == reservation.Id);

        var still = await (await aliceClient.GetAsync($"/v1/reservations/{reservation.Id}")).ReadReservationAsync();
        Assert.Equal(ReservationStatus.Scheduled, still.Status);
    }

    [Fact]
    public async Task Reservations_list_filters_by_status_and_pages()
    {
        var tenant = await api.CreateTenantAsync();
        using var client = api.ClientWithKey(tenant.ApiKey);
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            ids.Add((await (await client.ReserveAsync(new { poolId = Pool, gpuCount = 1, durationHours = 1 })).ReadReservationAsync()).Id);
        }

        await client.PostIdempotentAsync($"/v1/reservations/{ids[0]}/cancel", null);
        var first = (await client.GetFromJsonAsync<Page<ReservationResponse>>("/v1/reservations?limit=2", Json.Options))!;
        var second = (await client.GetFromJsonAsync<Page<ReservationResponse>>($"/v1/reservations?limit=2&pageToken={first.NextPageToken}", Json.Options))!;
        Assert.Equal(ids, first.Items.Concat(second.Items).Select(r => r.Id));
        Assert.Null(second.NextPageToken);

        var cancelled = (await client.GetFromJsonAsync<Page<ReservationResponse>>("/v1/reservations?status=cancelled", Json.Options))!;
        Assert.Equal([ids[0]], cancelled.Items.Select(r => r.Id));
    }
}
