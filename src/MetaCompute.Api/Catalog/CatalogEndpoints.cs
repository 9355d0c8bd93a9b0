using MetaCompute.Api.Data;
using MetaCompute.Api.Infrastructure;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace MetaCompute.Api.Catalog;

/// <summary>What is for sale: GPU models, regions and pools. Any valid key may read it.</summary>
public static class CatalogEndpoints
{
    public static RouteGroupBuilder MapCatalogEndpoints(this RouteGroupBuilder v1)
    {
        var catalog = v1.MapGroup("").WithTags("Catalog");
        catalog.MapGet("/gpu-models", ListGpuModels).WithName("listGpuModels").WithSummary("List the GPU models on sale");
        catalog.MapGet("/regions", ListRegions).WithName("listRegions").WithSummary("List regions and their sites");
        catalog.MapGet("/pools", ListPools).WithName("listPools").WithSummary("List capacity pools with their rules and prices");
        catalog.MapGet("/pools/{poolId}", GetPool).WithName("getPool").WithSummary("Get one capacity pool")
            .WithMetadata(new AnswersHeader(StatusCodes.Status200OK, "ETag", "The pool's version, to send as If-Match with an edit."))
            .ProducesProblem(StatusCodes.Status404NotFound);
        return v1;
    }

    public static async Task<Ok<Page<GpuModelResponse>>> ListGpuModels(MetaComputeDbContext db, CancellationToken ct)
    {
        var models = await db.GpuModels.AsNoTracking().OrderBy(m => m.Id).ToListAsync(ct);
        return TypedResults.Ok(new Page<GpuModelResponse>(models.Select(m => m.ToResponse()).ToList(), null));
    }

    public static async Task<Ok<Page<RegionResponse>>> ListRegions(MetaComputeDbContext db, CancellationToken ct)
    {
        var regions = await db.Regions.AsNoTracking().Include(r => r.Sites).OrderBy(r => r.Id).ToListAsync(ct);
        return TypedResults.Ok(new Page<RegionResponse>(regions.Select(r => r.ToResponse()).ToList(), null));
    }

    public static async Task<Ok<Page<PoolResponse>>> ListPools(MetaComputeDbContext db, CancellationToken ct)
    {
        var pools = await db.Pools.AsNoTracking().OrderBy(p => p.Id).ToListAsync(ct);
        var capacity = await PoolCapacity.ForPoolsAsync(db, null, ct);
        return TypedResults.Ok(new Page<PoolResponse>(
            pools.Select(p => p.ToResponse(capacity.GetValueOrDefault(p.Id, PoolCapacity.Empty))).ToList(), null));
    }

    public static async Task<Results<Ok<PoolResponse>, ProblemHttpResult>> GetPool(string poolId, MetaComputeDbContext db, HttpContext http,
        CancellationToken ct)
    {
        var pool = await db.Pools.AsNoTracking().FirstOrDefaultAsync(p => p.Id == poolId, ct);
        if (pool is null)
        {
            return Problems.NotFound($"Pool '{poolId}'");
        }

        var capacity = await PoolCapacity.ForPoolsAsync(db, [poolId], ct);
        http.Response.Headers.ETag = ETags.Format(pool.Version);
        return TypedResults.Ok(pool.ToResponse(capacity.GetValueOrDefault(poolId, PoolCapacity.Empty)));
    }
}
