using MetaCompute.Simulation.Inventory;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using NpgsqlTypes;

namespace MetaCompute.Api.Data;

/// <summary>
/// Writes a generated fleet into an empty database. The few catalog rows go through EF Core; islands, racks, nodes and
/// GPUs go through Npgsql binary COPY, which is what makes a million GPUs take seconds rather than minutes.
/// </summary>
public static class InventorySeeder
{
    public static async Task SeedAsync(MetaComputeDbContext db, Inventory inventory, DateTimeOffset now, CancellationToken ct)
    {
        db.GpuModels.AddRange(GpuModels.All.Select(m => new GpuModel
        {
            Id = m.Id, DisplayName = m.DisplayName, Vendor = m.Vendor, MemoryGb = m.MemoryGb, ListPricePerGpuHour = m.ListPricePerGpuHour,
        }));
        db.Regions.AddRange(inventory.Regions.Select(r => new Region { Id = r.Id, DisplayName = r.DisplayName }));
        db.Sites.AddRange(inventory.Sites.Select(s => new Site { Id = s.Id, RegionId = s.RegionId, Name = s.Name }));
        db.Pools.AddRange(inventory.Pools.Select(p => NewPool(p, inventory)));
        await db.SaveChangesAsync(ct);

        var connection = (NpgsqlConnection)db.Database.GetDbConnection();

        await using (var copy = await connection.BeginBinaryImportAsync("COPY fabric_islands (id, site_id, pool_id, name) FROM STDIN (FORMAT BINARY)", ct))
        {
            foreach (var island in inventory.Islands)
            {
                await copy.StartRowAsync(ct);
                await copy.WriteAsync(island.Id, NpgsqlDbType.Integer, ct);
                await copy.WriteAsync(island.SiteId, NpgsqlDbType.Integer, ct);
                await copy.WriteAsync(island.PoolId, NpgsqlDbType.Text, ct);
                await copy.WriteAsync(island.Name, NpgsqlDbType.Text, ct);
            }

            await copy.CompleteAsync(ct);
        }

        await using (var copy = await connection.BeginBinaryImportAsync("COPY racks (id, island_id, name) FROM STDIN (FORMAT BINARY)", ct))
        {
            foreach (var rack in inventory.Racks)
            {
                await copy.StartRowAsync(ct);
                await copy.WriteAsync(rack.Id, NpgsqlDbType.Integer, ct);
                await copy.WriteAsync(rack.IslandId, NpgsqlDbType.Integer, ct);
                await copy.WriteAsync(rack.Name, NpgsqlDbType.Text, ct);
            }

            await copy.CompleteAsync(ct);
        }

        await using (var copy = await connection.BeginBinaryImportAsync(
            "COPY nodes (id, rack_id, island_id, pool_id, hostname, state, updated_at) FROM STDIN (FORMAT BINARY)", ct))
        {
            foreach (var node in inventory.Nodes)
            {
                await copy.StartRowAsync(ct);
                await copy.WriteAsync(node.Id, NpgsqlDbType.Integer, ct);
                await copy.WriteAsync(node.RackId, NpgsqlDbType.Integer, ct);
                await copy.WriteAsync(node.IslandId, NpgsqlDbType.Integer, ct);
                await copy.WriteAsync(node.PoolId, NpgsqlDbType.Text, ct);
                await copy.WriteAsync(node.Hostname, NpgsqlDbType.Text, ct);
                await copy.WriteAsync((node.Failed ? NodeState.Failed : NodeState.Healthy).ToString(), NpgsqlDbType.Varchar, ct);
                await copy.WriteAsync(now, NpgsqlDbType.TimestampTz, ct);
            }

            await copy.CompleteAsync(ct);
        }

        await using (var copy = await connection.BeginBinaryImportAsync("COPY gpus (id, node_id, index) FROM STDIN (FORMAT BINARY)", ct))
        {
            foreach (var (gpuId, nodeId, index) in inventory.Gpus())
            {
                await copy.StartRowAsync(ct);
                await copy.WriteAsync(gpuId, NpgsqlDbType.Bigint, ct);
                await copy.WriteAsync(nodeId, NpgsqlDbType.Integer, ct);
                await copy.WriteAsync((short)index, NpgsqlDbType.Smallint, ct);
            }

            await copy.CompleteAsync(ct);
        }
    }

    /// <summary>Default commercial terms for a generated pool; operators change them later.</summary>
    private static Pool NewPool(PoolInfo info, Inventory inventory)
    {
        var model = GpuModels.Get(info.GpuModelId);
        var poolGpus = inventory.Nodes.Count(n => n.PoolId == info.Id) * InventoryOptions.GpusPerNode;
        var wholeNodes = info.AllocationUnit == AllocationUnit.Node;
        return new Pool
        {
            Id = info.Id,
            RegionId = info.RegionId,
            GpuModelId = info.GpuModelId,
            AllocationUnit = info.AllocationUnit,
            Rules = new PoolRules
            {
                MinGpus = wholeNodes ? InventoryOptions.GpusPerNode : 1,
                MaxGpus = Math.Max(InventoryOptions.GpusPerNode, Math.Min(2048, poolGpus / 2 / 8 * 8)),
                // Roughly 5 % of the pool, in whole nodes, stays with first-party demand.
                HoldbackGpus = poolGpus / 20 / 8 * 8,
            },
            Prices = new PoolPrices
            {
                OnDemand = model.ListPricePerGpuHour,
                Reserved = decimal.Round(model.ListPricePerGpuHour * 0.80m, 4),
                Spot = decimal.Round(model.ListPricePerGpuHour * 0.40m, 4),
                Internal = decimal.Round(model.ListPricePerGpuHour * 0.35m, 4),
            },
        };
    }
}
