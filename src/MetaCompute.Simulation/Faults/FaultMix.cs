namespace MetaCompute.Simulation.Faults;

/// <summary>One root cause of unexpected interruptions, with how often it was seen and how long a repair takes.</summary>
public sealed record FaultCause(string Component, string Category, int Count, TimeSpan RepairTime);

/// <summary>
/// The rate and root-cause mix of hardware and software interruptions. The reference is Table 5 of "The Llama 3 Herd
/// of Models" (Meta, 2024, arXiv 2407.21783): 419 unexpected interruptions in a 54-day window of pre-training on
/// 16,384 H100 GPUs (2,048 nodes of 8).
/// </summary>
public sealed record FaultMix(IReadOnlyList<FaultCause> Causes, int ObservedInterruptions, TimeSpan ObservedWindow, int ObservedGpus)
{
    /// <summary>Interruptions per GPU per day.</summary>
    public double RatePerGpuDay => ObservedInterruptions / (ObservedWindow.TotalDays * ObservedGpus);

    // Repair times by category are this model's assumption (the table gives none): a GPU or board is swapped within a
    // day, a host part in half a day, a switch or cable in hours; software faults clear with a restart.
    private static readonly Dictionary<string, TimeSpan> RepairByCategory = new()
    {
        ["GPU"] = TimeSpan.FromHours(24),
        ["Host"] = TimeSpan.FromHours(12),
        ["Network"] = TimeSpan.FromHours(4),
        ["Unplanned Maintenance"] = TimeSpan.FromHours(8),
        ["Dependency"] = TimeSpan.FromHours(1),
        ["Unknown"] = TimeSpan.FromHours(2),
    };

    public static readonly FaultMix Llama3 = new(
        new (string Component, string Category, int Count)[]
        {
            ("Faulty GPU", "GPU", 148),
            ("GPU HBM3 Memory", "GPU", 72),
            ("Software Bug", "Dependency", 54),
            ("Network Switch/Cable", "Network", 35),
            ("Host Maintenance", "Unplanned Maintenance", 32),
            ("GPU SRAM Memory", "GPU", 19),
            ("GPU System Processor", "GPU", 17),
            ("NIC", "Host", 7),
            ("NCCL Watchdog Timeouts", "Unknown", 7),
            ("Silent Data Corruption", "GPU", 6),
            ("GPU Thermal Interface + Sensor", "GPU", 6),
            ("SSD", "Host", 3),
            ("Power Supply", "Host", 3),
            ("Server Chassis", "Host", 2),
            ("IO Expansion Board", "Host", 2),
            ("Dependency", "Dependency", 2),
            ("CPU", "Host", 2),
            ("System Memory", "Host", 2),
        }.Select(c => new FaultCause(c.Component, c.Category, c.Count, RepairByCategory[c.Category])).ToList(),
        ObservedInterruptions: 419,
        ObservedWindow: TimeSpan.FromDays(54),
        ObservedGpus: 16_384);
}
