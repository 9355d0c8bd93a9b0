using System.Net.Http.Json;
using MetaCompute.Api.Events;
using MetaCompute.Api.Infrastructure;
using MetaCompute.Api.Reservations;

namespace MetaCompute.Api.Tests.Infrastructure;

/// <summary>Tenant calls as a client library would make them: every mutation with an Idempotency-Key.</summary>
public static class TenantClient
{
    public static Task<HttpResponseMessage> PostIdempotentAsync(this HttpClient client, string path, object? body, string? key = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path)
        {
            Content = body is null ? null : JsonContent.Create(body, options: Json.Options),
        };
        request.Headers.Add("Idempotency-Key", key ?? Guid.NewGuid().ToString());
        return client.SendAsync(request);
    }

    public static Task<HttpResponseMessage> ReserveAsync(this HttpClient client, object body, string? key = null) =>
        client.PostIdempotentAsync("/v1/reservations", body, key);

    public static async Task<ReservationResponse> ReadReservationAsync(this HttpResponseMessage response)
    {
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }

        return (await response.Content.ReadFromJsonAsync<ReservationResponse>(Json.Options))!;
    }

    /// <summary>
    /// Reads the feed (the tenant's, or the operators' audit trail at <paramref name="path"/>) from its start until
    /// <paramref name="done"/> holds. Events show once every older transaction on
    /// the server has finished, and other test classes share the server, so this waits a bounded time.
    /// </summary>
    public static async Task<Page<EventResponse>> ReadEventsUntilAsync(this HttpClient client, Func<Page<EventResponse>, bool> done,
        string path = "/v1/events")
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var page = (await client.GetFromJsonAsync<Page<EventResponse>>(path, Json.Options))!;
            if (done(page) || DateTime.UtcNow > deadline)
            {
                return page;
            }

            await Task.Delay(50);
        }
    }

    /// <summary>Pairs of allocations of one GPU whose periods overlap; the exclusion constraint should make this always 0.</summary>
    public const string OverlapSql = """
        SELECT count(*) FROM allocations a JOIN allocations b
          ON a.gpu_id = b.gpu_id AND a.id < b.id AND a.period && b.period
        """;
}
