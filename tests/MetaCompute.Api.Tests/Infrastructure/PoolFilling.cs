using System.Net.Http.Json;
using MetaCompute.Api.Catalog;
using MetaCompute.Api.Reservations;

namespace MetaCompute.Api.Tests.Infrastructure;

/// <summary>Takes a pool's capacity through the API, as tenants would, to set up sold-out scenes.</summary>
public static class PoolFilling
{
    public static async Task<PoolResponse> PoolAsync(this HttpClient client, string poolId) =>
        (await client.GetFromJsonAsync<PoolResponse>($"/v1/pools/{poolId}", Json.Options))!;

    /// <summary>GPUs a non-internal request can get in an empty pool: the healthy ones less the holdback.</summary>
    public static int Sellable(this PoolResponse pool) => pool.HealthyGpus - pool.Rules.HoldbackGpus;

    /// <summary>Holds <paramref name="gpus"/> from now for whole hours, in reservations no larger than the pool allows.</summary>
    public static async Task<List<ReservationResponse>> HoldAsync(this HttpClient client, PoolResponse pool, int gpus, int hours, string tier = "on_demand")
    {
        var held = new List<ReservationResponse>();
        for (var left = gpus; left > 0;)
        {
            var chunk = Math.Min(left, pool.Rules.MaxGpus / 8 * 8);
            held.Add(await (await client.ReserveAsync(new { poolId = pool.Id, gpuCount = chunk, durationHours = hours, tier })).ReadReservationAsync());
            left -= chunk;
        }

        return held;
    }
}
